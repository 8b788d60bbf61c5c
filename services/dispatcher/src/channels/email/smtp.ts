import type { SmtpSettings as ContractSmtpSettings } from "@followup/contracts";
import { createTransport } from "nodemailer";
import { type Classification, classifyError } from "../../classify.js";
import {
  errorText,
  type OutboundMessage,
  type PermanentReason,
  type ProviderAnswer,
  type ProviderClient,
  refusedBeforeCall,
  unanswered,
} from "../provider/answer.js";
import { CallDeadline } from "../provider/deadline.js";
import { checkEmail, listUnsubscribeHeaders } from "./message.js";

export const SMTP = "smtp";

/** A tenant's SMTP relay: contracts' SmtpSettings, validated by lead-intake when saved. */
export type SmtpSettings = ContractSmtpSettings;

export interface SmtpClientOptions {
  /** The whole send's deadline: connect, greeting, envelope and data. */
  timeoutMs?: number;
}

/** What nodemailer attaches to its errors (NodemailerError). */
interface SmtpError {
  code?: string;
  responseCode?: number;
  command?: string;
  permanent?: boolean;
}

/**
 * E-mail over a tenant's SMTP relay with nodemailer: the same message as SendGrid's, with the
 * one-click unsubscribe headers. A connection per send (relays and their credentials are the
 * tenants', read per send), closed when the send ends.
 */
export class SmtpClient implements ProviderClient<SmtpSettings> {
  readonly provider = SMTP;
  readonly #timeoutMs: number;
  readonly #open = new Set<{ close(): void }>();

  constructor(options: SmtpClientOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  async send(
    settings: SmtpSettings,
    message: OutboundMessage,
    signal?: AbortSignal,
  ): Promise<ProviderAnswer> {
    // What the connection cannot go without; the rest lead-intake checked when it was saved.
    if ((settings.user === undefined) !== (settings.pass === undefined))
      return refusedBeforeCall(
        SMTP,
        "invalid_settings",
        "settings.pass: expected user and pass together, or neither",
      );
    const email = checkEmail(message);
    if (!email.ok) return refusedBeforeCall(SMTP, email.reason, email.why);
    const s = settings;
    const secrets = s.pass ? [s.pass] : [];
    const transport = createTransport({
      host: s.host,
      port: s.port,
      secure: s.secure,
      ...(s.require_tls ? { requireTLS: true } : {}),
      ...(s.user ? { auth: { user: s.user, pass: s.pass! } } : {}),
      connectionTimeout: Math.min(this.#timeoutMs, 5_000),
      greetingTimeout: this.#timeoutMs,
      socketTimeout: this.#timeoutMs,
      logger: false,
      debug: false,
      disableFileAccess: true,
      disableUrlAccess: true,
    });
    this.#open.add(transport);
    const deadline = new CallDeadline(this.#timeoutMs, signal);
    try {
      const { text, html, unsubscribeUrl, ...rest } = email.email;
      const { "List-Unsubscribe-Post": post } = listUnsubscribeHeaders(unsubscribeUrl);
      const info = await transport.sendMail({
        from: s.from_name ? { name: s.from_name, address: s.from } : s.from,
        ...(s.reply_to ? { replyTo: s.reply_to } : {}),
        to: rest.to,
        subject: rest.subject,
        text,
        ...(html ? { html } : {}),
        // nodemailer writes `List-Unsubscribe: <url>` from `list`; the Post header goes as is.
        list: { unsubscribe: unsubscribeUrl },
        headers: { "List-Unsubscribe-Post": post },
        signal: deadline.signal,
      });
      return {
        classification: { kind: "delivered" },
        statusCode: replyCode(info.response) ?? 250,
        providerMessageId: info.messageId,
      };
    } catch (err) {
      if (deadline.timedOut) return unanswered(SMTP, err, secrets, this.#timeoutMs);
      return smtpFailure(err, secrets);
    } finally {
      deadline.end();
      transport.close();
      this.#open.delete(transport);
    }
  }

  async close(): Promise<void> {
    // Sends end on their own deadline; nothing is pooled between them.
  }

  async destroy(): Promise<void> {
    for (const transport of this.#open) transport.close();
  }
}

/**
 * Classifies a failed send. An SMTP reply decides as RFC 5321 says: 5yz permanent (but 503, a
 * session out of step), 4yz retried; without a reply, the connection rules of classify.ts, except
 * refused or missing credentials and configuration, which no retry fixes.
 */
export function smtpFailure(err: unknown, secrets: readonly string[]): ProviderAnswer {
  const e = (err ?? {}) as SmtpError;
  const message = err instanceof Error ? err.message : String(err);
  const code = e.responseCode;
  const error = `${SMTP}: ${code !== undefined ? `reply ${code}: ` : e.code ? `${e.code}: ` : ""}${errorText(message, secrets)}`;
  if (code !== undefined) {
    const permanent = code >= 500 && code !== 503;
    if (!permanent && code >= 400)
      return { classification: { kind: "retry", reason: "smtp_4xx" }, statusCode: code, error };
    if (permanent)
      return {
        classification: { kind: "permanent" },
        statusCode: code,
        error,
        permanentReason: smtpReason(e),
      };
  }
  if (e.code === "EAUTH" || e.code === "ENOAUTH")
    return {
      classification: { kind: "permanent" },
      statusCode: code ?? null,
      error,
      permanentReason: "unauthorized",
    };
  if (e.code === "ECONFIG")
    return {
      classification: { kind: "permanent" },
      statusCode: null,
      error,
      permanentReason: "invalid_settings",
    };
  const classification: Classification = classifyError(err);
  return {
    classification,
    statusCode: code ?? null,
    error,
    ...(classification.kind === "permanent" ? { permanentReason: "rejected" as const } : {}),
  };
}

function smtpReason(e: SmtpError): PermanentReason {
  if (e.code === "EAUTH" || e.responseCode === 535 || e.responseCode === 530) return "unauthorized";
  if (e.responseCode === 552) return "message_too_long";
  // Refused at RCPT TO: this mailbox does not exist or takes no mail from us.
  if (e.command?.startsWith("RCPT") || e.code === "EENVELOPE") return "invalid_recipient";
  return "rejected";
}

function replyCode(response: string | undefined): number | undefined {
  const match = /^(\d{3})/.exec(response ?? "");
  return match ? Number(match[1]) : undefined;
}
