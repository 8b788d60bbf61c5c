import { type Classification, classifyError, describeError } from "../../classify.js";
import type { ChannelAnswer } from "../channel.js";

/**
 * What the provider clients (Twilio, SendGrid, SMTP, Slack) share: the message they send, the
 * answer they give and how a secret is kept out of it. A client never throws for a failed send;
 * it classifies it with classify.ts's rules (the status first, the provider's code second) and
 * says what else the failure means for the recipient or the channel.
 */

/** A follow-up rendered for one channel. */
export interface OutboundMessage {
  /** The recipient: a phone number (SMS), an e-mail address (e-mail); unused by Slack. */
  to: string;
  /** E-mail only. */
  subject?: string;
  /** The text: the SMS body, the e-mail's text part, the Slack message's `text`. */
  body: string;
  /** E-mail only: the HTML part. */
  html?: string;
  /** E-mail only: `{PUBLIC_BASE_URL}/u/{token}`, sent as List-Unsubscribe (RFC 8058 one-click). */
  unsubscribeUrl?: string;
  /** SMS only: where Twilio posts the message's status (`twilioStatusCallbackUrl`). */
  statusCallbackUrl?: string;
  /** Slack only: Block Kit blocks; `body` stays the notification fallback. */
  blocks?: unknown[];
}

/** Why a send failed for good: what the dead letter and the operator read. */
export const PERMANENT_REASONS = [
  /** The recipient is not a reachable address or number (unparseable, or the provider says so). */
  "invalid_recipient",
  /** The recipient opted out with the provider (Twilio 21610: replied STOP). */
  "opted_out",
  /** Over the channel's limit (SMS body over 1600 characters, e-mail over SendGrid's size). */
  "message_too_long",
  /** The provider refused the message itself (missing subject, bad payload, ...). */
  "invalid_message",
  /** The tenant's credentials were refused (401, 403, SMTP 535). */
  "unauthorized",
  /** The channel is gone (a Slack webhook revoked, its channel deleted or archived). */
  "channel_gone",
  /** The tenant's provider settings are incomplete or malformed; no call was made. */
  "invalid_settings",
  /** Any other refusal: the provider's words are in `error`. */
  "rejected",
] as const;
export type PermanentReason = (typeof PERMANENT_REASONS)[number];

/** What a failure means beyond this follow-up, for the caller to act on. */
export type ProviderEffect = "suppress_recipient" | "mark_channel_broken";

export interface ProviderAnswer extends ChannelAnswer {
  /** The provider's id of the message (Twilio's SID, SendGrid's X-Message-Id, the SMTP Message-ID). */
  providerMessageId?: string;
  /** Present on a permanent failure. */
  permanentReason?: PermanentReason;
  /** The provider's error code when it sent one (Twilio's `code`, Slack's error text). */
  providerCode?: string;
  effect?: ProviderEffect;
}

/** A provider client: `settings` are the tenant's, read from its channel settings per send. */
export interface ProviderClient<Settings> {
  /** The provider's name, as errors and logs name it. */
  readonly provider: string;
  send(settings: Settings, message: OutboundMessage, signal?: AbortSignal): Promise<ProviderAnswer>;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/** A permanent failure decided before any call (bad recipient, bad settings, too long). */
export function refusedBeforeCall(provider: string, reason: PermanentReason, why: string): ProviderAnswer {
  return {
    classification: { kind: "permanent" },
    statusCode: null,
    permanentReason: reason,
    error: `${provider}: ${why}`,
  };
}

/**
 * The answer to a refusal the status classified: a retry keeps the provider's wait, a permanent
 * failure its reason (default `rejected`) and effect.
 */
export function refusal(
  classification: Exclude<Classification, { kind: "delivered" }>,
  statusCode: number,
  error: string,
  details: {
    providerCode?: string | undefined;
    retryAfterMs?: number | null;
    permanentReason?: PermanentReason;
    effect?: ProviderEffect | undefined;
  },
): ProviderAnswer {
  const answer: ProviderAnswer = { classification, statusCode, error };
  if (details.providerCode !== undefined) answer.providerCode = details.providerCode;
  if (classification.kind === "retry") {
    if (details.retryAfterMs !== undefined && details.retryAfterMs !== null)
      answer.retryAfterMs = details.retryAfterMs;
    return answer;
  }
  answer.permanentReason = details.permanentReason ?? "rejected";
  if (details.effect) answer.effect = details.effect;
  return answer;
}

/** A call that got no answer (timeout, connection error, aborted), with its message scrubbed. */
export function unanswered(
  provider: string,
  err: unknown,
  secrets: readonly string[],
  timedOutAfterMs?: number,
): ProviderAnswer {
  // The deadline decides, whatever error the aborted call threw (nodemailer's is EABORT).
  const classification: Classification =
    timedOutAfterMs !== undefined ? { kind: "retry", reason: "timeout" } : classifyError(err);
  const error =
    timedOutAfterMs !== undefined
      ? `${provider}: timeout: no response within ${timedOutAfterMs} ms`
      : `${provider}: ${redact(describeError(err), secrets)}`;
  return {
    classification,
    statusCode: null,
    error,
    ...(classification.kind === "permanent" ? { permanentReason: "rejected" as const } : {}),
  };
}

/** Secrets shorter than this are not searched for (they would match ordinary text). */
const MIN_SECRET_CHARS = 6;

/** `text` with every occurrence of a secret (and its URL-encoded form) replaced by `[redacted]`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_CHARS) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)]))
      out = out.split(form).join("[redacted]");
  }
  return out;
}

/** How much of a provider's error text is kept. */
export const ERROR_TEXT_CHARS = 300;

/** One line of at most ERROR_TEXT_CHARS, secrets removed. */
export function errorText(text: string, secrets: readonly string[]): string {
  return redact(text.replace(/\s+/g, " ").trim(), secrets).slice(0, ERROR_TEXT_CHARS);
}

/** A JSON object body, or undefined (not JSON, or not an object). */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
