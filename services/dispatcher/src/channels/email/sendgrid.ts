import type { SendGridSettings as ContractSendGridSettings } from "@followup/contracts";
import { classifyStatus } from "../../classify.js";
import { MAX_RETRY_AFTER_MS, parseRetryAfter } from "../../retry-after.js";
import {
  errorText,
  type OutboundMessage,
  type PermanentReason,
  type ProviderAnswer,
  parseJsonObject,
  refusal,
  refusedBeforeCall,
} from "../provider/answer.js";
import { SENDGRID_API_URL } from "../provider/env.js";
import {
  baseUrl,
  type HttpClientOptions,
  HttpProviderClient,
  headerValue,
  type ProviderResponse,
} from "../provider/http.js";
import { type CheckedEmail, checkEmail, emailAddress, listUnsubscribeHeaders } from "./message.js";

export const SENDGRID = "sendgrid";

/** A tenant's SendGrid settings: contracts' SendGridSettings, validated by lead-intake when saved. */
export type SendGridSettings = ContractSendGridSettings;

export interface SendGridClientOptions extends HttpClientOptions {
  /** SENDGRID_API_URL; the real API by default (`https://api.eu.sendgrid.com` for EU accounts). */
  apiUrl?: string;
}

/** The v3 Mail Send request of one e-mail (one personalization, one recipient). */
export function mailSendBody(settings: SendGridSettings, email: CheckedEmail) {
  return {
    personalizations: [{ to: [{ email: email.to }] }],
    from: { email: settings.from, ...(settings.from_name ? { name: settings.from_name } : {}) },
    ...(settings.reply_to ? { reply_to: { email: settings.reply_to } } : {}),
    subject: email.subject,
    // SendGrid wants text/plain before text/html.
    content: [
      { type: "text/plain", value: email.text },
      ...(email.html ? [{ type: "text/html", value: email.html }] : []),
    ],
    headers: listUnsubscribeHeaders(email.unsubscribeUrl),
  };
}

/** SendGrid v3 Mail Send over undici: one JSON POST per e-mail, one keep-alive pool. */
export class SendGridClient extends HttpProviderClient<SendGridSettings> {
  readonly provider = SENDGRID;
  readonly #url: string;

  constructor(options: SendGridClientOptions = {}) {
    const base = baseUrl(options.apiUrl ?? SENDGRID_API_URL, "SENDGRID_API_URL");
    super(options, new URL(base).origin);
    this.#url = `${base}/v3/mail/send`;
  }

  async send(
    settings: SendGridSettings,
    message: OutboundMessage,
    signal?: AbortSignal,
  ): Promise<ProviderAnswer> {
    if (!settings.api_key)
      return refusedBeforeCall(SENDGRID, "invalid_settings", "settings.api_key: expected the API key");
    const from = emailAddress.safeParse(settings.from);
    if (!from.success)
      return refusedBeforeCall(SENDGRID, "invalid_settings", "settings.from: expected an e-mail address");
    const email = checkEmail(message);
    if (!email.ok) return refusedBeforeCall(SENDGRID, email.reason, email.why);
    const secrets = [settings.api_key];
    const call = await this.post(
      this.#url,
      { authorization: `Bearer ${settings.api_key}`, "content-type": "application/json" },
      JSON.stringify(mailSendBody(settings, email.email)),
      secrets,
      signal,
    );
    if ("answer" in call) return call.answer;
    return sendGridAnswer(call.response, secrets, this.now());
  }
}

/** Classifies Mail Send's answer: 2xx sent (202, or 200 in sandbox mode), the status decides the rest. */
export function sendGridAnswer(
  response: ProviderResponse,
  secrets: readonly string[],
  now: Date,
): ProviderAnswer {
  const { statusCode, headers, text } = response;
  const classification = classifyStatus(statusCode);
  if (classification.kind === "delivered") {
    const id = headerValue(headers, "x-message-id");
    return { classification, statusCode, ...(id ? { providerMessageId: id } : {}) };
  }
  const errors = fieldErrors(text);
  const words = errors.length
    ? errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join("; ")
    : text;
  const error = `${SENDGRID}: HTTP ${statusCode}${words.trim() ? `: ${errorText(words, secrets)}` : ""}`;
  return refusal(classification, statusCode, error, {
    retryAfterMs:
      parseRateLimitReset(headerValue(headers, "x-ratelimit-reset"), now) ??
      parseRetryAfter(headers["retry-after"], now),
    permanentReason: permanentReasonOf(statusCode, errors),
  });
}

function permanentReasonOf(statusCode: number, errors: { field: string | null }[]): PermanentReason {
  if (statusCode === 401 || statusCode === 403) return "unauthorized";
  if (statusCode === 413) return "message_too_long";
  if (statusCode === 400)
    return errors.some((e) => e.field?.startsWith("personalizations") && e.field.includes(".to"))
      ? "invalid_recipient"
      : "invalid_message";
  return "rejected";
}

function fieldErrors(text: string): { field: string | null; message: string }[] {
  const errors = parseJsonObject(text)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors.flatMap((e: unknown) => {
    const { field, message } = (e ?? {}) as { field?: unknown; message?: unknown };
    return typeof message === "string" ? [{ field: typeof field === "string" ? field : null, message }] : [];
  });
}

/**
 * SendGrid's `X-RateLimit-Reset` (epoch seconds, when the limit resets) as milliseconds from now;
 * null when absent or unreadable. A time in the past means now (0); more than a day, a day.
 */
export function parseRateLimitReset(value: string | undefined, now: Date): number | null {
  const text = value?.trim();
  if (!text || !/^\d{1,12}$/.test(text)) return null;
  return Math.min(Math.max(0, Number(text) * 1000 - now.getTime()), MAX_RETRY_AFTER_MS);
}
