import type { KnownChannel, RenderedMessage } from "@followup/contracts";
import { type MessageTemplate, type RenderOptions, renderMessage } from "./render.js";
import type { MessageVariables } from "./variables.js";

/**
 * What a step without a template sends, per channel: Liquid like a tenant's, rendered by the same
 * engine (so the e-mail HTML is escaped the same way). The hook has none: it keeps the payload
 * of the system it replaces (`message = "Auto follow-up at +<delay>s"`), built by the dispatcher.
 */
export const BUILT_IN_TEMPLATES: Record<Exclude<KnownChannel, "hook">, MessageTemplate> = {
  sms: {
    channel: "sms",
    body: 'Hi {{ lead.first_name | default: "there" }}, thanks for getting in touch. When would suit you for a quick call?',
  },
  email: {
    channel: "email",
    subject: "Following up on your enquiry",
    body: [
      'Hi {{ lead.first_name | default: "there" }},',
      "",
      "Thanks for getting in touch. When would suit you for a quick call? Just reply to this e-mail.",
      "{% if unsubscribe_url %}",
      "To stop these e-mails: {{ unsubscribe_url }}{% endif %}",
    ].join("\n"),
    html: [
      '<p>Hi {{ lead.first_name | default: "there" }},</p>',
      "<p>Thanks for getting in touch. When would suit you for a quick call? Just reply to this e-mail.</p>",
      '{% if unsubscribe_url %}<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>{% endif %}',
    ].join("\n"),
  },
  slack: {
    channel: "slack",
    body: "Follow-up {{ step }} of {{ sequence }} for {{ lead.name }} ({{ lead.intent }}, {{ lead.urgency }} urgency): {{ lead.details | truncate: 200 }}",
  },
};

/** The built-in message of a channel for these variables; null for the hook (its own payload). */
export function builtInMessage(
  channel: KnownChannel,
  variables: MessageVariables,
  options: RenderOptions = {},
): RenderedMessage | null {
  return channel === "hook" ? null : renderMessage(BUILT_IN_TEMPLATES[channel], variables, options);
}
