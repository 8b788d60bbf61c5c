import { z } from "zod";
import { ConfigError, env } from "./config.js";
import { parseSealingKey, type SealingKey, SealingKeyring } from "./sealing.js";

/**
 * The variables lead-intake and the dispatcher share for the channels: where the public reaches
 * the engine (links sent to leads, provider callbacks), the key that seals channel secrets, and
 * the secrets of the one-click unsubscribe tokens. One definition, so both read them alike.
 */

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

export const channelEnv = {
  /**
   * Where the public reaches lead-intake (`https://followup.example.com`): links sent to leads
   * (the one-click unsubscribe link) and provider callbacks (Twilio's status callback) are built
   * on it. Unset, previews show a placeholder link, e-mail cannot be sent (every e-mail carries
   * its unsubscribe link) and SMS go without a status callback.
   */
  PUBLIC_BASE_URL: env.url(undefined, ["http", "https"]).optional(),
  /**
   * The key that seals channel secrets at rest (AES-256-GCM): 32 bytes in base64. Required once
   * a tenant configures a channel: without it PUT /v1/channels answers 409 not_configured, and
   * the dispatcher cannot open what it sends with.
   */
  CHANNEL_SECRETS_KEY: sealingKey.optional(),
  /** Keys that sealed secrets before a rotation, comma-separated: they open, never seal. */
  CHANNEL_SECRETS_KEYS_OLD: sealingKeys.optional(),
  /**
   * The secrets of the one-click unsubscribe tokens in every e-mail's List-Unsubscribe URL,
   * comma-separated, shared by lead-intake and the dispatcher: the first signs, every one
   * verifies (rotation). Unset, no /u/:token link verifies and no e-mail can be sent.
   */
  UNSUBSCRIBE_SECRET: z
    .string()
    .transform((text) =>
      text
        .split(",")
        .map((part) => part.trim())
        .filter((part) => part !== ""),
    )
    .refine((secrets) => secrets.length > 0 && secrets.every((s) => s.length >= 32), {
      message: "expected one or more comma-separated secrets of at least 32 characters each",
    })
    .optional(),
};

type ChannelKeys = {
  CHANNEL_SECRETS_KEY?: SealingKey | undefined;
  CHANNEL_SECRETS_KEYS_OLD?: SealingKey[] | undefined;
};

/** Old keys without a current one are a configuration error: they only open, the current one seals. */
export function checkChannelKeys(config: ChannelKeys): void {
  if (config.CHANNEL_SECRETS_KEYS_OLD?.length && config.CHANNEL_SECRETS_KEY === undefined) {
    throw new ConfigError([
      {
        variable: "CHANNEL_SECRETS_KEY",
        message:
          "is required when CHANNEL_SECRETS_KEYS_OLD is set: old keys only open, the current one seals",
      },
    ]);
  }
}

/** The keyring of channel secrets, or undefined when CHANNEL_SECRETS_KEY is not set. */
export function channelSecretsOf(config: ChannelKeys): SealingKeyring | undefined {
  return config.CHANNEL_SECRETS_KEY === undefined
    ? undefined
    : new SealingKeyring(config.CHANNEL_SECRETS_KEY, config.CHANNEL_SECRETS_KEYS_OLD ?? []);
}
