import { createHash, timingSafeEqual } from "node:crypto";
import type { ApiKeyEntry } from "./config.js";

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
