import { createHash, timingSafeEqual } from "node:crypto";
import { isValidToken } from "@followup/contracts";

/**
 * API keys (`API_KEYS=key:tenant,...`): every HTTP service that serves a tenant's data (lead-intake,
 * reports) authenticates callers with the same keys, parsed and looked up here.
 */

/** One `key:tenant` pair of API_KEYS. */
export interface ApiKeyEntry {
  key: string;
  tenant: string;
}

/**
 * Parses `API_KEYS=key:tenant,key2:tenant2`. Problems name the pair by its position, never by
 * its key: a typo in a secret must not print the secret.
 */
export function parseApiKeys(raw: string): { entries: ApiKeyEntry[]; problems: string[] } {
  const entries: ApiKeyEntry[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  raw.split(",").forEach((part, index) => {
    const position = `pair ${index + 1}`;
    const pair = part.trim();
    if (pair === "") {
      problems.push(`${position} is empty; expected key:tenant`);
      return;
    }
    // The tenant is a token (no ':'), so the last ':' separates it even if a key holds one.
    const colon = pair.lastIndexOf(":");
    const key = colon < 0 ? "" : pair.slice(0, colon).trim();
    const tenant = colon < 0 ? "" : pair.slice(colon + 1).trim();
    if (colon < 0) {
      problems.push(`${position} has no ':'; expected key:tenant`);
      return;
    }
    if (key === "") problems.push(`${position} has an empty key; expected key:tenant`);
    if (!isValidToken(tenant)) {
      problems.push(`${position}: the tenant must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'`);
    }
    if (key !== "" && seen.has(key)) problems.push(`${position} repeats the key of an earlier pair`);
    if (key !== "" && isValidToken(tenant) && !seen.has(key)) entries.push({ key, tenant });
    seen.add(key);
  });
  return { entries, problems };
}

/** Who a valid API key authenticates: the tenant, and which key (for per-key rate limits). */
export interface Caller {
  tenant: string;
  /** The key's position in API_KEYS: identifies it in rate limits without holding the key. */
  keyId: number;
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/**
 * The API keys of API_KEYS. A lookup hashes the given key to a fixed length and compares it
 * with every configured key in constant time, without stopping at a match: the time taken
 * says nothing about how much of a key was right, nor which key matched.
 */
export class ApiKeys {
  readonly #entries: { digest: Buffer; tenant: string }[];

  constructor(entries: readonly ApiKeyEntry[]) {
    if (entries.length === 0) throw new Error("ApiKeys needs at least one key:tenant pair");
    this.#entries = entries.map((entry) => ({ digest: digest(entry.key), tenant: entry.tenant }));
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The caller a key authenticates, or null for a missing or unknown key. */
  lookup(given: string | string[] | undefined): Caller | null {
    // A repeated header is refused rather than guessed at.
    if (typeof given !== "string" || given === "") return null;
    const candidate = digest(given);
    let found: Caller | null = null;
    for (let i = 0; i < this.#entries.length; i++) {
      const entry = this.#entries[i]!;
      const equal = timingSafeEqual(candidate, entry.digest);
      if (equal && found === null) found = { tenant: entry.tenant, keyId: i };
    }
    return found;
  }
}
