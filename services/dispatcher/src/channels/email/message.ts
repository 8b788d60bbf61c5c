import { z } from "zod";
import type { OutboundMessage } from "../provider/answer.js";
import { isHttpUrl } from "../provider/http.js";

/**
 * What every e-mail client (SendGrid, SMTP) checks and adds the same way: the addresses, the
 * subject, and the RFC 8058 one-click unsubscribe headers every e-mail carries.
 */

/** One plain address (no display name, no spaces or header-breaking characters). */
const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:".]+(\.[^\s@<>()[\]\\,;:".]+)+$/;

export const emailAddress = z
  .string()
  .trim()
  .regex(ADDRESS, "expected an e-mail address like name@example.com");

/** The headers of a one-click unsubscribe (RFC 8058); Gmail and Yahoo require both for bulk senders. */
export function listUnsubscribeHeaders(unsubscribeUrl: string): Record<string, string> {
  return {
    "List-Unsubscribe": `<${unsubscribeUrl}>`,
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
  };
}

export interface CheckedEmail {
  to: string;
  subject: string;
  text: string;
  html?: string;
  unsubscribeUrl: string;
}

/** The message as an e-mail, or what is wrong with it (naming the field) and why it is permanent. */
export function checkEmail(
  message: OutboundMessage,
):
  | { ok: true; email: CheckedEmail }
  | { ok: false; reason: "invalid_recipient" | "invalid_message"; why: string } {
  const to = emailAddress.safeParse(message.to);
  if (!to.success) return { ok: false, reason: "invalid_recipient", why: "to: expected an e-mail address" };
  const subject = message.subject?.trim() ?? "";
  if (subject === "" || /[\r\n]/.test(subject))
    return { ok: false, reason: "invalid_message", why: "subject: expected one line of text" };
  if (message.body.trim() === "") return { ok: false, reason: "invalid_message", why: "body: expected text" };
  if (!isHttpUrl(message.unsubscribeUrl))
    return {
      ok: false,
      reason: "invalid_message",
      why: "unsubscribeUrl: every e-mail carries an http(s) one-click unsubscribe URL",
    };
  return {
    ok: true,
    email: {
      to: to.data,
      subject,
      text: message.body,
      ...(message.html ? { html: message.html } : {}),
      unsubscribeUrl: message.unsubscribeUrl,
    },
  };
}
