import type { KnownChannel, StoredLead } from "@followup/contracts";

/**
 * What a template may read, and nothing else of the lead: no id, score, outcome or tenant. The
 * names are the documented ones (`lead.first_name`, `step`, `unsubscribe_url`, ...).
 */
export interface MessageVariables {
  lead: {
    name: string;
    first_name: string;
    email?: string;
    phone: string;
    details: string;
    intent: string;
    urgency: string;
  };
  /** The step being delivered, numbered from 1. */
  step: number;
  /** The name of the sequence the step belongs to. */
  sequence: string;
  /** E-mail only: the lead's one-click unsubscribe link. */
  unsubscribe_url?: string;
}

export interface MessageContext {
  step: number;
  sequence: string;
  unsubscribeUrl?: string;
}

/** The first word of the name ("Alex" of "Alex Rivera"); empty when the name is blank. */
export function firstName(name: string): string {
  return name.trim().split(/\s+/)[0] ?? "";
}

export function messageVariables(lead: StoredLead, context: MessageContext): MessageVariables {
  return {
    lead: {
      name: lead.name,
      first_name: firstName(lead.name),
      ...(lead.email !== undefined ? { email: lead.email } : {}),
      phone: lead.phone,
      details: lead.details,
      intent: lead.enrichment.intent,
      urgency: lead.enrichment.urgency,
    },
    step: context.step,
    sequence: context.sequence,
    ...(context.unsubscribeUrl !== undefined ? { unsubscribe_url: context.unsubscribeUrl } : {}),
  };
}

/** The variables a channel's templates may name: `unsubscribe_url` is the e-mail's only. */
export function knownVariables(channel: KnownChannel): string[] {
  return [
    ...Object.keys(SAMPLE.lead).map((field) => `lead.${field}`),
    "step",
    "sequence",
    ...(channel === "email" ? ["unsubscribe_url"] : []),
  ];
}

/** Every variable set, so that rendering it with strictVariables finds only the unknown ones. */
const SAMPLE = {
  lead: {
    name: "Alex Rivera",
    first_name: "Alex",
    email: "alex@example.com",
    phone: "+1-555-0199",
    details: "Need to book for tomorrow morning; budget $5000.",
    intent: "lead_capture",
    urgency: "high",
  },
  step: 1,
  sequence: "sample",
} satisfies MessageVariables;

/** The sample lead a template is rendered against when it is saved. */
export function sampleVariables(channel: KnownChannel): MessageVariables {
  return {
    ...SAMPLE,
    lead: { ...SAMPLE.lead },
    ...(channel === "email" ? { unsubscribe_url: "https://example.com/unsubscribe/sample" } : {}),
  };
}
