import { join, resolve } from "node:path";
import { isValidToken } from "@followup/contracts";
import {
  ConfigError,
  commonEnv,
  type Env,
  env,
  loadConfig,
  parseSealingKey,
  type SealingKey,
  SealingKeyring,
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

/** A key of the sealing module: 32 bytes in base64. The message never repeats the value. */
const sealingKey = z
  .string()
  .trim()
  .transform((text, ctx): SealingKey => {
    try {
      return parseSealingKey(text);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
      return z.NEVER;
    }
  });

/** Old sealing keys, comma-separated; a bad one is named by its position. */
const sealingKeys = z
  .string()
  .trim()
  .transform((text, ctx): SealingKey[] => {
    const keys: SealingKey[] = [];
    text.split(",").forEach((part, index) => {
      if (part.trim() === "") return;
      try {
        keys.push(parseSealingKey(part));
      } catch (err) {
        ctx.addIssue({ code: "custom", message: `entry ${index + 1}: ${(err as Error).message}` });
      }
    });
    return keys;
  });

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
  /**
   * Where the public reaches this service (`https://followup.example.com`): links sent to leads,
   * such as a template preview's unsubscribe link, are built on it. Unset, previews show a
   * placeholder link.
   */
  PUBLIC_BASE_URL: env.url(undefined, ["http", "https"]).optional(),
  /**
   * The key that seals channel secrets at rest (AES-256-GCM): 32 bytes in base64. Required once
   * a tenant configures a channel: without it PUT /v1/channels answers 409 not_configured.
   */
  CHANNEL_SECRETS_KEY: sealingKey.optional(),
  /** Keys that sealed secrets before a rotation, comma-separated: they open, never seal. */
  CHANNEL_SECRETS_KEYS_OLD: sealingKeys.optional(),
  /**
   * The secrets of the one-click unsubscribe tokens in every e-mail's List-Unsubscribe URL,
   * comma-separated, shared with the dispatcher: the first signs, every one verifies (rotation).
   * Unset, no /u/:token link verifies.
   */
  UNSUBSCRIBE_SECRET: commaList()
    .refine((secrets) => secrets.length > 0 && secrets.every((s) => s.length >= 32), {
      message: "expected one or more comma-separated secrets of at least 32 characters each",
    })
    .optional(),
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
  if (config.CHANNEL_SECRETS_KEYS_OLD?.length && config.CHANNEL_SECRETS_KEY === undefined) {
    throw new ConfigError([
      {
        variable: "CHANNEL_SECRETS_KEY",
        message:
          "is required when CHANNEL_SECRETS_KEYS_OLD is set: old keys only open, the current one seals",
      },
    ]);
  }
  return config;
}

/** The keyring of channel secrets, or undefined when CHANNEL_SECRETS_KEY is not set. */
export function channelSecretsOf(config: {
  CHANNEL_SECRETS_KEY?: SealingKey | undefined;
  CHANNEL_SECRETS_KEYS_OLD?: SealingKey[] | undefined;
}): SealingKeyring | undefined {
  return config.CHANNEL_SECRETS_KEY === undefined
    ? undefined
    : new SealingKeyring(config.CHANNEL_SECRETS_KEY, config.CHANNEL_SECRETS_KEYS_OLD ?? []);
}

/**
 * Where the outbox lives: OUTBOX_DIR, else `.data/outbox/lead-intake-<PORT>` under the working
 * directory. Two copies on one host cannot share a port, so by default they never share an
 * outbox, and a copy restarted with the same configuration finds what it left.
 */
export function outboxDirOf(config: { OUTBOX_DIR?: string | undefined; PORT: number }): string {
  return resolve(config.OUTBOX_DIR ?? join(".data", "outbox", `lead-intake-${config.PORT}`));
}
