import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): the signed content is
 * `${webhook-id}.${webhook-timestamp}.${body}`, signed with HMAC-SHA256 under the secret's
 * bytes (`whsec_` + base64), sent as `webhook-signature: v1,<base64>`. node:crypto does
 * the work; the tests check interoperability with the reference `standardwebhooks` package.
 */

export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

export class WebhookSecretError extends Error {}

/** Decodes `whsec_<base64>` into the key bytes; throws naming what was expected. */
export function parseWebhookSecret(secret: string): Buffer {
  const encoded = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : undefined;
  if (!encoded || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    throw new WebhookSecretError("expected whsec_ followed by base64 (e.g. from `openssl rand -base64 32`)");
  }
  const key = Buffer.from(encoded, "base64");
  if (key.length < 24) throw new WebhookSecretError("expected a key of at least 24 bytes (32 recommended)");
  return key;
}

export interface SignedHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
}

export function signWebhook(key: Buffer, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac("sha256", key).update(`${id}.${timestampSeconds}.${body}`).digest("base64");
  return `v1,${mac}`;
}

/** The three headers of a signed call. */
export function webhookHeaders(key: Buffer, id: string, body: string, now: Date = new Date()): SignedHeaders {
  const timestamp = Math.floor(now.getTime() / 1000);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signWebhook(key, id, timestamp, body),
  };
}

export type VerifyResult =
  | { ok: true; id: string; timestamp: number }
  | {
      ok: false;
      reason: "missing_headers" | "bad_timestamp" | "timestamp_out_of_tolerance" | "bad_signature";
    };

/** Verifies a signed call; the timestamp must be within `toleranceSeconds` of now, either way. */
export function verifyWebhook(
  key: Buffer,
  headers: Partial<Record<keyof SignedHeaders, string | string[] | undefined>>,
  body: string,
  options: { toleranceSeconds?: number; now?: Date } = {},
): VerifyResult {
  const id = single(headers["webhook-id"]);
  const timestampText = single(headers["webhook-timestamp"]);
  const signatures = single(headers["webhook-signature"]);
  if (!id || !timestampText || !signatures) return { ok: false, reason: "missing_headers" };
  if (!/^\d{1,12}$/.test(timestampText)) return { ok: false, reason: "bad_timestamp" };
  const timestamp = Number(timestampText);
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) {
    return { ok: false, reason: "timestamp_out_of_tolerance" };
  }
  const expected = Buffer.from(signWebhook(key, id, timestamp, body).slice(3), "base64");
  // Several space-separated signatures may be sent while a secret is being rotated.
  for (const candidate of signatures.split(" ")) {
    const [version, mac] = candidate.split(",", 2);
    if (version !== "v1" || !mac) continue;
    const given = Buffer.from(mac, "base64");
    if (given.length === expected.length && timingSafeEqual(given, expected))
      return { ok: true, id, timestamp };
  }
  return { ok: false, reason: "bad_signature" };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
