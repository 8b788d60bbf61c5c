import { z } from "zod";
import { classifyStatus } from "../../classify.js";
import { parseRetryAfter } from "../../retry-after.js";
import {
  errorText,
  type OutboundMessage,
  type PermanentReason,
  type ProviderAnswer,
  parseJsonObject,
  refusal,
  refusedBeforeCall,
  settingsProblems,
} from "../provider/answer.js";
import { TWILIO_API_URL } from "../provider/env.js";
import { baseUrl, type HttpClientOptions, HttpProviderClient } from "../provider/http.js";
import { normalisePhone } from "./phone.js";

export const TWILIO = "twilio";
/** Twilio's limit on `Body` (it splits longer texts into segments up to this). */
export const SMS_MAX_CHARS = 1600;

/** Twilio's error codes this client acts on, by name (Twilio warns codes change: status decides first). */
export const TwilioErrorCodes = {
  Authenticate: 20003,
  TooManyRequests: 20429,
  InvalidTo: 21211,
  BodyRequired: 21602,
  Unsubscribed: 21610,
  NotMobile: 21614,
  BodyTooLong: 21617,
} as const;

const SID = (prefix: string) => new RegExp(`^${prefix}[0-9a-fA-F]{32}$`);

/** A tenant's Twilio settings: Account SID with its auth token or an API key, and one sender. */
export const TwilioSettings = z
  .object({
    account_sid: z.string().regex(SID("AC"), "expected AC followed by 32 hex digits"),
    auth_token: z.string().min(1).optional(),
    api_key_sid: z.string().regex(SID("SK"), "expected SK followed by 32 hex digits").optional(),
    api_key_secret: z.string().min(1).optional(),
    /** An E.164 number or an alphanumeric sender id. */
    from: z.string().min(1).optional(),
    messaging_service_sid: z.string().regex(SID("MG"), "expected MG followed by 32 hex digits").optional(),
    /** Where numbers written without `+` were written (ISO 3166-1 alpha-2); none: only +numbers. */
    default_region: z.string().length(2).optional(),
  })
  .superRefine((s, ctx) => {
    const apiKey = s.api_key_sid !== undefined || s.api_key_secret !== undefined;
    if ((s.auth_token !== undefined) === apiKey)
      ctx.addIssue({
        code: "custom",
        path: ["auth_token"],
        message: "expected auth_token or api_key_sid with api_key_secret",
      });
    if (apiKey && (s.api_key_sid === undefined || s.api_key_secret === undefined))
      ctx.addIssue({
        code: "custom",
        path: [s.api_key_sid === undefined ? "api_key_sid" : "api_key_secret"],
        message: "expected api_key_sid and api_key_secret together",
      });
    if ((s.from !== undefined) === (s.messaging_service_sid !== undefined))
      ctx.addIssue({
        code: "custom",
        path: ["from"],
        message: "expected exactly one of from and messaging_service_sid",
      });
  });
export type TwilioSettings = z.infer<typeof TwilioSettings>;

export interface TwilioClientOptions extends HttpClientOptions {
  /** TWILIO_API_URL; the real API by default. */
  apiUrl?: string;
}

/** Twilio Programmable Messaging over undici: one form POST per SMS, one keep-alive pool. */
export class TwilioClient extends HttpProviderClient<TwilioSettings> {
  readonly provider = TWILIO;
  readonly #base: string;

  constructor(options: TwilioClientOptions = {}) {
    const base = baseUrl(options.apiUrl ?? TWILIO_API_URL, "TWILIO_API_URL");
    super(options, new URL(base).origin);
    this.#base = base;
  }

  async send(
    settings: TwilioSettings,
    message: OutboundMessage,
    signal?: AbortSignal,
  ): Promise<ProviderAnswer> {
    const checked = TwilioSettings.safeParse(settings);
    if (!checked.success)
      return refusedBeforeCall(TWILIO, "invalid_settings", settingsProblems(checked.error));
    const s = checked.data;
    const phone = normalisePhone(message.to, s.default_region);
    if (!phone.ok)
      return refusedBeforeCall(
        TWILIO,
        phone.reason === "invalid_region" ? "invalid_settings" : "invalid_recipient",
        phone.reason === "invalid_region"
          ? "settings.default_region: expected a supported ISO 3166-1 alpha-2 region"
          : `to: not a phone number in E.164 or of the default region (${phone.reason})`,
      );
    // Counted in UTF-16 units, never fewer than Twilio's characters: what passes here passes there.
    if (message.body.length > SMS_MAX_CHARS)
      return refusedBeforeCall(
        TWILIO,
        "message_too_long",
        `body: ${message.body.length} characters, Twilio takes at most ${SMS_MAX_CHARS}`,
      );
    if (message.body.trim() === "")
      return refusedBeforeCall(TWILIO, "invalid_message", "body: expected text");

    const form = new URLSearchParams({ To: phone.e164, Body: message.body });
    if (s.messaging_service_sid) form.set("MessagingServiceSid", s.messaging_service_sid);
    else form.set("From", s.from!);
    if (message.statusCallbackUrl) form.set("StatusCallback", message.statusCallbackUrl);

    const user = s.api_key_sid ?? s.account_sid;
    const password = s.api_key_secret ?? s.auth_token!;
    const basic = Buffer.from(`${user}:${password}`).toString("base64");
    const secrets = [password, basic];
    const url = `${this.#base}/2010-04-01/Accounts/${s.account_sid}/Messages.json`;
    const call = await this.post(
      url,
      {
        authorization: `Basic ${basic}`,
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
      },
      form.toString(),
      secrets,
      signal,
    );
    if ("answer" in call) return call.answer;
    const { statusCode, headers, text } = call.response;
    const body = parseJsonObject(text);
    const classification = classifyStatus(statusCode);
    if (classification.kind === "delivered") {
      const sid = typeof body?.sid === "string" ? body.sid : undefined;
      return { classification, statusCode, ...(sid ? { providerMessageId: sid } : {}) };
    }
    const code = typeof body?.code === "number" ? body.code : undefined;
    const words = typeof body?.message === "string" ? body.message : text;
    const said = errorText(words, secrets);
    const error = `${TWILIO}: HTTP ${statusCode}${code !== undefined ? ` code ${code}` : ""}${said ? `: ${said}` : ""}`;
    const permanentReason = permanentReasonOf(statusCode, code);
    return refusal(classification, statusCode, error, {
      providerCode: code !== undefined ? String(code) : undefined,
      retryAfterMs: parseRetryAfter(headers["retry-after"], this.now()),
      permanentReason,
      effect: permanentReason === "opted_out" ? "suppress_recipient" : undefined,
    });
  }
}

/** Why a refused SMS is refused for good: the status said permanent, the code says why. */
export function permanentReasonOf(statusCode: number, code: number | undefined): PermanentReason {
  switch (code) {
    case TwilioErrorCodes.Unsubscribed:
      return "opted_out";
    case TwilioErrorCodes.InvalidTo:
    case TwilioErrorCodes.NotMobile:
      return "invalid_recipient";
    case TwilioErrorCodes.BodyTooLong:
      return "message_too_long";
    case TwilioErrorCodes.BodyRequired:
      return "invalid_message";
    case TwilioErrorCodes.Authenticate:
      return "unauthorized";
  }
  return statusCode === 401 || statusCode === 403 ? "unauthorized" : "rejected";
}
