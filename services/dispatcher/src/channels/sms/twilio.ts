import type { SmsSettings } from "@followup/contracts";
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

/**
 * A tenant's Twilio settings are contracts' SmsSettings, validated by lead-intake when saved. The
 * checks here are only what the call itself cannot go without (credentials, one sender, a region
 * libphonenumber-js knows), so a record changed behind the API fails as invalid_settings.
 */
export type TwilioSettings = SmsSettings;

function settingsProblem(s: TwilioSettings): string | null {
  const apiKey = s.api_key_sid !== undefined || s.api_key_secret !== undefined;
  if ((s.auth_token !== undefined) === apiKey)
    return "settings.auth_token: expected auth_token or api_key_sid with api_key_secret";
  if (apiKey && (s.api_key_sid === undefined || s.api_key_secret === undefined))
    return `settings.${s.api_key_sid === undefined ? "api_key_sid" : "api_key_secret"}: expected api_key_sid and api_key_secret together`;
  if ((s.from !== undefined) === (s.messaging_service_sid !== undefined))
    return "settings.from: expected exactly one of from and messaging_service_sid";
  if (!/^AC[0-9a-fA-F]{32}$/.test(s.account_sid ?? ""))
    return "settings.account_sid: expected AC followed by 32 hex digits";
  if (s.messaging_service_sid !== undefined && !/^MG[0-9a-fA-F]{32}$/.test(s.messaging_service_sid))
    return "settings.messaging_service_sid: expected MG followed by 32 hex digits";
  return null;
}

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
    const problem = settingsProblem(settings);
    if (problem) return refusedBeforeCall(TWILIO, "invalid_settings", problem);
    const s = settings;
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
