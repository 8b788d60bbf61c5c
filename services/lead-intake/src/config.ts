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

/** A comma-separated list; blanks around and between the commas are dropped. */
const commaList = () =>
  z.string().transform((text) =>
    text
      .split(",")
      .map((part) => part.trim())
      .filter((part) => part !== ""),
  );

export const leadIntakeEnv = {
  ...commonEnv,
  /** `key:tenant,...`; required. Each key authenticates one tenant. */
  API_KEYS: env.apiKeys(),
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
  /**
   * The tenants whose API keys may roll the deployment's conversion model back
   * (POST /ops/model/rollback), comma-separated. Unset: nobody may; train:outcomes promotes.
   */
  MODEL_OPERATOR_TENANTS: commaList()
    .refine((tenants) => tenants.every(isValidToken), {
      message: "expected comma-separated tenants of 1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
    })
    .optional(),
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
