import { randomBytes } from "node:crypto";
import { FakeProvider, type FakeReply, json, mediaType, type SeenRequest, single } from "./fake-http.js";

/**
 * A fake Twilio Programmable Messaging API (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`)
 * that checks each request as Twilio does: the path's account, HTTP Basic auth with the account's
 * auth token or one of its API keys, a form body, `To` in E.164, exactly one of `From` and
 * `MessagingServiceSid` (`MG` + 32 hex), `Body` of at most 1600 characters, a `StatusCallback`
 * URL. It answers 201 with a Message resource, or Twilio's error body
 * `{"code","message","more_info","status"}`. Twilio's magic test numbers work as with test
 * credentials: +15005550001 is invalid (21211), +15005550004 has replied STOP (21610),
 * +15005550009 cannot receive SMS (21614).
 */

export interface FakeTwilioAccount {
  accountSid: string;
  authToken: string;
  apiKeySid: string;
  apiKeySecret: string;
}

/** One message Twilio accepted. */
export interface TwilioMessageRecord {
  sid: string;
  accountSid: string;
  /** Who authenticated: the Account SID or the API key SID. */
  authUser: string;
  to: string;
  from?: string;
  messagingServiceSid?: string;
  body: string;
  statusCallback?: string;
  /** Every form parameter as sent. */
  params: Record<string, string>;
}

/** Failures a test can script; each answers Twilio's documented status, code and message. */
export type TwilioFailure =
  | "too_many_requests" // 429, code 20429
  | "server_error" // 500, code 20500
  | "service_unavailable" // 503, code 20503
  | "unsubscribed" // 400, code 21610
  | "invalid_to"; // 400, code 21211

export const TWILIO_ERRORS = {
  20003: [401, "Authenticate"],
  20404: [404, "The requested resource was not found"],
  20429: [429, "Too Many Requests"],
  20500: [500, "An internal server error has occurred"],
  20503: [503, "Service unavailable"],
  21211: [400, "The 'To' number is not a valid phone number."],
  21602: [400, "Message body is required."],
  21603: [400, "A 'From' phone number is required."],
  21604: [400, "A 'To' phone number is required."],
  21609: [400, "Invalid 'StatusCallback'."],
  21610: [400, "Attempt to send to unsubscribed recipient"],
  21614: [400, "'To' number is not a valid mobile number"],
  21617: [400, "The concatenated message body exceeds the 1600 character limit."],
  21702: [400, "The Messaging Service Sid is invalid."],
} as const satisfies Record<number, readonly [number, string]>;
type TwilioCode = keyof typeof TWILIO_ERRORS;

const FAILURE_CODES: Record<TwilioFailure, TwilioCode> = {
  too_many_requests: 20429,
  server_error: 20500,
  service_unavailable: 20503,
  unsubscribed: 21610,
  invalid_to: 21211,
};

const MAGIC_TO: Record<string, TwilioCode> = {
  "+15005550001": 21211,
  "+15005550004": 21610,
  "+15005550009": 21614,
};

const E164 = /^\+[1-9]\d{1,14}$/;
const MG = /^MG[0-9a-fA-F]{32}$/;
const PATH = /^\/2010-04-01\/Accounts\/(AC[0-9a-fA-F]{32})\/Messages\.json$/;

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

export function twilioError(
  code: TwilioCode,
  headers: Record<string, string> = {},
  detail?: string,
): FakeReply {
  const [status, message] = TWILIO_ERRORS[code];
  return json(
    status,
    { code, message: detail ?? message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
    headers,
  );
}

export class FakeTwilio extends FakeProvider<{ code: TwilioCode; headers: Record<string, string> }> {
  /** The account whose credentials the tests configure. */
  readonly account: FakeTwilioAccount = {
    accountSid: `AC${hex(16)}`,
    authToken: hex(16),
    apiKeySid: `SK${hex(16)}`,
    apiKeySecret: hex(16),
  };
  /** Messages accepted (201), in order. */
  readonly messages: TwilioMessageRecord[] = [];

  /** The next `times` authenticated requests fail so (a 429 may carry `headers`, e.g. Retry-After). */
  failNext(failure: TwilioFailure, options: { times?: number; headers?: Record<string, string> } = {}): void {
    this.failures.push({ code: FAILURE_CODES[failure], headers: options.headers ?? {} }, options.times ?? 1);
  }

  protected answer(request: SeenRequest): FakeReply {
    const match = PATH.exec(request.path);
    if (request.method !== "POST" || !match || match[1] !== this.account.accountSid)
      return twilioError(20404);
    const authUser = this.#authenticated(single(request.headers, "authorization"));
    if (!authUser) return twilioError(20003, { "www-authenticate": 'Basic realm="Twilio API"' });
    const scripted = this.failures.take();
    if (scripted) return twilioError(scripted.code, scripted.headers);

    // Twilio reads parameters from a form body only.
    const params =
      mediaType(request.headers) === "application/x-www-form-urlencoded"
        ? new URLSearchParams(request.raw)
        : new URLSearchParams();
    const to = params.get("To");
    const from = params.get("From");
    const service = params.get("MessagingServiceSid");
    const body = params.get("Body");
    const callback = params.get("StatusCallback");
    if (!to) return twilioError(21604);
    if (!E164.test(to)) return twilioError(21211, {}, `The 'To' number ${to} is not a valid phone number.`);
    if (MAGIC_TO[to]) return twilioError(MAGIC_TO[to]);
    if ((from === null) === (service === null))
      return twilioError(21603, {}, "Exactly one of 'From' and 'MessagingServiceSid' is required.");
    if (service !== null && !MG.test(service)) return twilioError(21702);
    if (!body) return twilioError(21602);
    if (body.length > 1600) return twilioError(21617);
    if (callback !== null && !/^https?:\/\/[^\s]+$/.test(callback)) return twilioError(21609);

    const sid = `SM${hex(16)}`;
    const record: TwilioMessageRecord = {
      sid,
      accountSid: this.account.accountSid,
      authUser,
      to,
      ...(from !== null ? { from } : {}),
      ...(service !== null ? { messagingServiceSid: service } : {}),
      body,
      ...(callback !== null ? { statusCallback: callback } : {}),
      params: Object.fromEntries(params),
    };
    this.messages.push(record);
    return json(201, this.#resource(record));
  }

  /** The authenticated user (Account SID or API key SID), or undefined. */
  #authenticated(header: string | undefined): string | undefined {
    const match = /^Basic ([A-Za-z0-9+/]+={0,2})$/.exec(header ?? "");
    if (!match) return undefined;
    const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    const [user, pass] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
    const { accountSid, authToken, apiKeySid, apiKeySecret } = this.account;
    if (user === accountSid && pass === authToken) return user;
    if (user === apiKeySid && pass === apiKeySecret) return user;
    return undefined;
  }

  /** The Message resource as Twilio's 201 answers it. */
  #resource(m: TwilioMessageRecord) {
    const now = new Date().toUTCString().replace("GMT", "+0000");
    const uri = `/2010-04-01/Accounts/${m.accountSid}/Messages/${m.sid}`;
    return {
      account_sid: m.accountSid,
      api_version: "2010-04-01",
      body: m.body,
      date_created: now,
      date_sent: null,
      date_updated: now,
      direction: "outbound-api",
      error_code: null,
      error_message: null,
      from: m.from ?? null,
      messaging_service_sid: m.messagingServiceSid ?? null,
      num_media: "0",
      num_segments: String(Math.max(1, Math.ceil(m.body.length / 153))),
      price: null,
      price_unit: "USD",
      sid: m.sid,
      status: m.messagingServiceSid ? "accepted" : "queued",
      subresource_uris: { media: `${uri}/Media.json` },
      to: m.to,
      uri: `${uri}.json`,
    };
  }
}

/** A fake Twilio on 127.0.0.1 with one account (`fake.account`). */
export function startFakeTwilio(): Promise<FakeTwilio> {
  return new FakeTwilio().listen();
}
