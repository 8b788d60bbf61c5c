import { createHash } from "node:crypto";
import { z } from "zod";
import { E164_PATTERN, EmailAddress, SealedSecret } from "./channels.js";
import { Token } from "./lead.js";
import { assertToken } from "./subjects.js";

/**
 * Suppressions: addresses a tenant must not contact on a channel any more (an unsubscribe, an
 * SMS STOP, a provider's opt-out, one added by hand), in the `suppressions` KV bucket under
 * `<tenant>.<sha256(channel:normalised address)>`: the key says nothing of the address. The
 * address itself is in the value, sealed (personal data). lead-intake writes them; the
 * dispatcher checks `suppressionKey` before every send.
 */

/** The channels that reach one person at an address. */
export const SUPPRESSION_CHANNELS = ["sms", "email"] as const;
export const SuppressionChannel = z.enum(SUPPRESSION_CHANNELS, {
  error: `must be one of ${SUPPRESSION_CHANNELS.join(", ")}`,
});
export type SuppressionChannel = z.infer<typeof SuppressionChannel>;

export const SUPPRESSION_REASONS = ["manual", "unsubscribe", "stop", "provider_opt_out"] as const;
export const SuppressionReason = z.enum(SUPPRESSION_REASONS);
export type SuppressionReason = z.infer<typeof SuppressionReason>;

export type NormalisedAddress = { ok: true; address: string } | { ok: false; message: string };

/**
 * An address as suppressions compare it: an e-mail trimmed and lower-cased; a phone number in
 * E.164, with the spaces, dashes, dots and brackets people write removed (a number without its
 * `+` and country code is refused: nothing is guessed).
 */
export function normaliseAddress(channel: SuppressionChannel, address: string): NormalisedAddress {
  if (channel === "email") {
    const parsed = EmailAddress.safeParse(address);
    return parsed.success
      ? { ok: true, address: parsed.data.toLowerCase() }
      : { ok: false, message: "must be an e-mail address like name@example.com" };
  }
  const compact = address.trim().replace(/[\s\-.()]/g, "");
  return E164_PATTERN.test(compact)
    ? { ok: true, address: compact }
    : { ok: false, message: "must be a phone number in E.164, like +14155552671" };
}

/** The id of a suppression: hex SHA-256 of `<channel>:<normalised address>`; throws on a bad address. */
export function suppressionId(channel: SuppressionChannel, address: string): string {
  const normalised = normaliseAddress(channel, address);
  if (!normalised.ok) throw new Error(`address: ${normalised.message}`);
  return createHash("sha256").update(`${channel}:${normalised.address}`).digest("hex");
}

/** The key of a tenant's suppression of `address` on `channel`: what the dispatcher looks up. */
export function suppressionKey(tenant: string, channel: SuppressionChannel, address: string): string {
  return `${assertToken("tenant", tenant)}.${suppressionId(channel, address)}`;
}

export const SuppressionId = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 hex digits");

/** A suppression as stored under `<tenant>.<id>`. */
export const SuppressionRecord = z
  .looseObject({
    tenant: Token,
    id: SuppressionId,
    channel: SuppressionChannel,
    /** The normalised address, sealed; absent when no CHANNEL_SECRETS_KEY could seal it. */
    address: SealedSecret.optional(),
    reason: SuppressionReason,
    /** Where it came from: `api`, `one_click`, `twilio_inbound`, a provider. */
    source: z.string().min(1).max(64),
    created_at: z.iso.datetime(),
  })
  .meta({ id: "SuppressionRecord", description: "Value of a suppression in the suppressions KV bucket" });
export type SuppressionRecord = z.infer<typeof SuppressionRecord>;

/** Body of `POST /v1/suppressions`. */
export const SuppressionRequest = z
  .strictObject({ channel: SuppressionChannel, address: z.string().min(1).max(320) })
  .superRefine((body, ctx) => {
    const normalised = normaliseAddress(body.channel, body.address);
    if (!normalised.ok) ctx.addIssue({ code: "custom", path: ["address"], message: normalised.message });
  })
  .meta({ id: "SuppressionRequest", description: "Body of POST /v1/suppressions" });
export type SuppressionRequest = z.infer<typeof SuppressionRequest>;

/** A suppression as the API shows it to its tenant. */
export const SuppressionView = z
  .object({
    id: SuppressionId,
    channel: SuppressionChannel,
    /** The normalised address; null when it was stored without one (no key to seal it). */
    address: z.string().nullable(),
    reason: SuppressionReason,
    source: z.string(),
    created_at: z.iso.datetime(),
  })
  .meta({ id: "SuppressionView", description: "A suppression of the caller's tenant" });
export type SuppressionView = z.infer<typeof SuppressionView>;

export const SUPPRESSION_LIST_MAX = 1000;

/** `GET /v1/suppressions`: all (up to `limit`), or the one of an address. */
export const SuppressionQuery = z
  .strictObject({
    channel: SuppressionChannel.optional(),
    address: z.string().min(1).max(320).optional(),
    limit: z.coerce
      .number({ error: `must be an integer from 1 to ${SUPPRESSION_LIST_MAX}` })
      .int()
      .min(1)
      .max(SUPPRESSION_LIST_MAX)
      .default(SUPPRESSION_LIST_MAX),
  })
  .superRefine((query, ctx) => {
    if (query.address === undefined) return;
    if (query.channel === undefined) {
      ctx.addIssue({ code: "custom", path: ["channel"], message: "is required with address" });
      return;
    }
    const normalised = normaliseAddress(query.channel, query.address);
    if (!normalised.ok) ctx.addIssue({ code: "custom", path: ["address"], message: normalised.message });
  })
  .meta({ id: "SuppressionQuery", description: "Query of GET /v1/suppressions" });

export const SuppressionList = z
  .object({
    count: z.number().int().min(0),
    /** Whether there are more than `limit` (the listing is the first `limit` keys). */
    more: z.boolean(),
    suppressions: z.array(SuppressionView),
  })
  .meta({ id: "SuppressionList", description: "data of the response to GET /v1/suppressions" });
export type SuppressionList = z.infer<typeof SuppressionList>;

export const SuppressionParams = z
  .object({ id: SuppressionId })
  .meta({ id: "SuppressionParams", description: "Path parameters of /v1/suppressions/:id" });

export const SuppressionDeleted = z
  .object({ id: SuppressionId, deleted: z.literal(true) })
  .meta({ id: "SuppressionDeleted", description: "data of the response to DELETE /v1/suppressions/:id" });

/** Bodies of an inbound SMS that opt the sender out, and back in (Twilio's, exactly, any case). */
export const SMS_OPT_OUT_KEYWORDS = [
  "STOP",
  "STOPALL",
  "UNSUBSCRIBE",
  "CANCEL",
  "END",
  "QUIT",
  "REVOKE",
  "OPTOUT",
] as const;
export const SMS_OPT_IN_KEYWORDS = ["START", "UNSTOP", "YES"] as const;

/** What an inbound SMS body asks for: only a body that is exactly one keyword counts. */
export function smsKeywordOf(body: string): "opt_out" | "opt_in" | null {
  const word = body.trim().toUpperCase();
  if ((SMS_OPT_OUT_KEYWORDS as readonly string[]).includes(word)) return "opt_out";
  if ((SMS_OPT_IN_KEYWORDS as readonly string[]).includes(word)) return "opt_in";
  return null;
}
