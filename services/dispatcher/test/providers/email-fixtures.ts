import { readUnsubscribeToken, unsubscribeToken, unsubscribeUrl } from "@followup/service-kit";
import type { OutboundMessage } from "../../src/channels/provider/answer.js";

/** What the e-mail clients' tests send: one lead's rendered e-mail with its unsubscribe URL. */

export const UNSUBSCRIBE_SECRET = "unsubscribe-secret-for-tests-0123456789";
export const LEAD = { tenant: "acme", leadId: "L-7", address: "ada@example.com" };

export function emailMessage(extra: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    to: LEAD.address,
    subject: "Your quote",
    body: "Hi Ada, here is your quote.",
    html: "<p>Hi Ada, here is your <b>quote</b>.</p>",
    unsubscribeUrl: unsubscribeUrl("https://engine.example", unsubscribeToken(UNSUBSCRIBE_SECRET, LEAD)),
    ...extra,
  };
}

/** The token of a `List-Unsubscribe` URL (`<https://.../u/<token>>` or the bare URL), checked for shape. */
export function tokenOf(listUnsubscribe: string): string {
  const url = listUnsubscribe.replace(/^<|>$/g, "");
  const token = url.slice(url.lastIndexOf("/u/") + 3);
  if (!readUnsubscribeToken(token)) throw new Error(`not an unsubscribe token: ${token}`);
  return token;
}
