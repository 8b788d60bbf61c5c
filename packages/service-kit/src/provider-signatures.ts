import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Signatures at the edges with providers and recipients, shared by the dispatcher (which builds
 * the URLs it hands out) and lead-intake (which receives the calls to them): Twilio's
 * `X-Twilio-Signature` on status callbacks and inbound messages, and the one-click unsubscribe
 * token in every e-mail's `List-Unsubscribe` URL (RFC 8058). Comparisons are constant-time.
 */

/** Form parameters as Twilio posts them; a name may repeat. */
export type TwilioParams = URLSearchParams | Record<string, string | readonly string[]>;

/**
 * Twilio's request signature: base64(HMAC-SHA1(auth token, full URL + each POST parameter's name
 * and value, sorted by name)). `url` must be the public URL Twilio called (scheme, host, path and
 * query), built from the configured public base URL, never from the request's Host header.
 */
export function twilioSignature(url: string, params: TwilioParams, authToken: string): string {
  const pairs: [string, string][] =
    params instanceof URLSearchParams
      ? [...params.entries()]
      : Object.entries(params).flatMap(([name, value]) =>
          typeof value === "string"
            ? [[name, value] as [string, string]]
            : value.map((v) => [name, v] as [string, string]),
        );
  // Sorted by name, then by value for a repeated name, as Twilio's own SDKs do.
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  const hmac = createHmac("sha1", authToken).update(url);
  for (const [name, value] of pairs) hmac.update(name).update(value);
  return hmac.digest("base64");
}

/** Whether `signature` (the `X-Twilio-Signature` header) is Twilio's signature of this call. */
export function verifyTwilioSignature(
  url: string,
  params: TwilioParams,
  signature: string | readonly string[] | undefined,
  authToken: string,
): boolean {
  const given = typeof signature === "string" ? signature : signature?.[0];
  if (!given || !authToken) return false;
  return sameBytes(
    Buffer.from(given, "base64"),
    Buffer.from(twilioSignature(url, params, authToken), "base64"),
  );
}

/** Which attempt of which follow-up a status callback reports on: carried in its URL's query. */
export interface StatusCallbackRef {
  leadId: string;
  step: number;
  attempt: number;
  replays: number;
}

/**
 * The status callback URL of a tenant's messages: what the dispatcher sends as `StatusCallback`.
 * With `ref`, its query names the lead, step, attempt and replay, so lead-intake maps Twilio's
 * report back to its follow-up without a lookup; Twilio signs the whole URL, query included, so
 * the reference cannot be changed without breaking the signature.
 */
export function twilioStatusCallbackUrl(
  publicBaseUrl: string,
  tenant: string,
  ref?: StatusCallbackRef,
): string {
  const url = `${publicBaseUrl.replace(/\/+$/, "")}/hooks/twilio/status/${encodeURIComponent(tenant)}`;
  if (!ref) return url;
  const query = new URLSearchParams({
    lead: ref.leadId,
    step: String(ref.step),
    attempt: String(ref.attempt),
    replays: String(ref.replays),
  });
  return `${url}?${query}`;
}

/** The reference a status callback's query carries, or null when it is not one the dispatcher built. */
export function readStatusCallbackRef(query: URLSearchParams): StatusCallbackRef | null {
  const leadId = query.get("lead") ?? "";
  const numbers = ["step", "attempt", "replays"].map((name) => query.get(name) ?? "");
  if (!ID.test(leadId) || !numbers.every((n) => /^\d{1,6}$/.test(n))) return null;
  const [step, attempt, replays] = numbers.map(Number) as [number, number, number];
  if (step < 1 || attempt < 1) return null;
  return { leadId, step, attempt, replays };
}

/** Whom an unsubscribe token stands for: one address of one lead of one tenant. */
export interface UnsubscribeSubject {
  tenant: string;
  leadId: string;
  address: string;
}

/** The secret (or, while rotating, the secrets: the first signs) of the unsubscribe tokens. */
export type UnsubscribeSecret = string | Buffer | readonly (string | Buffer)[];

/** Tenants and lead ids are `[A-Za-z0-9_-]{1,64}`: URL-safe and free of the separator. */
const ID = /^[A-Za-z0-9_-]{1,64}$/;
const MAC = /^[A-Za-z0-9_-]{43}$/;

function unsubscribeMac(secret: string | Buffer, { tenant, leadId, address }: UnsubscribeSubject): Buffer {
  // Domain-separated so the key cannot be used to forge any other HMAC the engine checks.
  return createHmac("sha256", secret)
    .update(`followup-unsubscribe-v1\n${tenant}\n${leadId}\n${address.trim().toLowerCase()}`)
    .digest();
}

function secretsOf(secret: UnsubscribeSecret): (string | Buffer)[] {
  return typeof secret === "string" || Buffer.isBuffer(secret) ? [secret] : [...secret];
}

/**
 * The token of `{PUBLIC_BASE_URL}/u/{token}`: `<tenant>.<leadId>.<mac>`, the MAC an HMAC-SHA256
 * (base64url) of tenant, lead and address (case-insensitive). The address is not in the token,
 * so the URL carries no personal data: /u/:token reads the lead named by the token and verifies
 * the MAC against its address, so a token for an address the lead no longer has does not verify.
 */
export function unsubscribeToken(secret: UnsubscribeSecret, subject: UnsubscribeSubject): string {
  if (!ID.test(subject.tenant)) throw new Error("unsubscribe token: tenant: expected 1-64 of [A-Za-z0-9_-]");
  if (!ID.test(subject.leadId)) throw new Error("unsubscribe token: leadId: expected 1-64 of [A-Za-z0-9_-]");
  const [first] = secretsOf(secret);
  if (first === undefined || first.length === 0) throw new Error("unsubscribe token: secret: expected a key");
  return `${subject.tenant}.${subject.leadId}.${unsubscribeMac(first, subject).toString("base64url")}`;
}

/** The tenant and lead a token names, untrusted until verifyUnsubscribeToken; null when malformed. */
export function readUnsubscribeToken(token: string): { tenant: string; leadId: string } | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const [tenant, leadId, mac] = parts as [string, string, string];
  if (!ID.test(tenant) || !ID.test(leadId) || !MAC.test(mac)) return null;
  return { tenant, leadId };
}

/** Whether `token` was made for this tenant, lead and address with (one of) the secret(s). */
export function verifyUnsubscribeToken(
  secret: UnsubscribeSecret,
  token: string,
  subject: UnsubscribeSubject,
): boolean {
  const named = readUnsubscribeToken(token);
  if (!named || named.tenant !== subject.tenant || named.leadId !== subject.leadId) return false;
  const macText = token.slice(token.lastIndexOf(".") + 1);
  const given = Buffer.from(macText, "base64url");
  // Only the canonical text of the MAC: its last character has two bits the bytes do not use, so
  // four spellings would otherwise verify (a changed token must not).
  if (given.toString("base64url") !== macText) return false;
  let ok = false;
  // Every secret is tried (no early exit), so the time taken does not tell which one matched.
  for (const key of secretsOf(secret)) {
    if (key.length > 0 && sameBytes(given, unsubscribeMac(key, subject))) ok = true;
  }
  return ok;
}

/** The one-click unsubscribe URL of a token. */
export function unsubscribeUrl(publicBaseUrl: string, token: string): string {
  return `${publicBaseUrl.replace(/\/+$/, "")}/u/${token}`;
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}
