import { join, resolve } from "node:path";
import { isValidToken } from "@followup/contracts";
import {
  channelEnv,
  channelSecretsOf,
  checkChannelKeys,
  commonEnv,
  type Env,
  env,
  loadConfig,
} from "@followup/service-kit";
import { z } from "zod";

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

const apiKeys = z
  .string()
  .transform((raw, ctx) => {
    const { entries, problems } = parseApiKeys(raw);
    for (const problem of problems) ctx.addIssue({ code: "custom", message: problem });
    return entries;
  })
  .refine((entries) => entries.length > 0, { message: "expected at least one key:tenant pair" });

export const leadIntakeEnv = {
  ...commonEnv,
  /** `key:tenant,...`; required. Each key authenticates one tenant. */
  API_KEYS: apiKeys,
  PORT: env.port(8000),
  HOST: env.string("0.0.0.0"),
  FOLLOWUP_ENABLED: env.boolean(true),
  FOLLOWUP_QUEUE: env.queue(),
  /**
   * The Standard Webhooks secret the dispatcher signs hook calls with. Without it the hook
   * receiver accepts only API-key calls.
   */
  FOLLOWUP_HOOK_SECRET: env.webhookSecret().optional(),
  BODY_LIMIT_BYTES: env.number(16_384, { min: 1024, max: 10 * 1024 * 1024, integer: true }),
  RATE_LIMIT_PER_MINUTE: env.number(600, { min: 1, max: 1_000_000, integer: true }),
  /** How long a publish (or KV write) may wait for JetStream's acknowledgement. */
  PUBLISH_TIMEOUT_MS: env.number(5000, { min: 100, max: 60_000, integer: true }),
  /**
   * The durable local outbox of leads accepted while JetStream could not take them; relative
   * paths are under the working directory. One directory per lead-intake copy; unset, it is
   * `.data/outbox/lead-intake-<PORT>` (see outboxDirOf).
   */
  OUTBOX_DIR: z.string().trim().optional(),
  ...channelEnv,
  /** At most this many leads in the outbox; then 503. 0 turns the outbox off (503 while NATS is down). */
  OUTBOX_MAX_LEADS: env.number(10_000, { min: 0, max: 1_000_000, integer: true }),
};

export type LeadIntakeConfig = ReturnType<typeof loadLeadIntakeConfig>;

/** Loads and validates lead-intake's environment; throws ConfigError naming each bad variable. */
export function loadLeadIntakeConfig(source: Env = process.env) {
  const config = loadConfig(leadIntakeEnv, source);
  checkChannelKeys(config);
  return config;
}

export { channelSecretsOf };

/**
 * Where the outbox lives: OUTBOX_DIR, else `.data/outbox/lead-intake-<PORT>` under the working
 * directory. Two copies on one host cannot share a port, so by default they never share an
 * outbox, and a copy restarted with the same configuration finds what it left.
 */
export function outboxDirOf(config: { OUTBOX_DIR?: string | undefined; PORT: number }): string {
  return resolve(config.OUTBOX_DIR ?? join(".data", "outbox", `lead-intake-${config.PORT}`));
}
