import { z } from "zod";
import { TOKEN_PATTERN } from "./subjects.js";

/** A tenant or lead id as it appears in subjects and keys. */
export const Token = z.string().regex(TOKEN_PATTERN, "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'");

export const Intent = z.enum(["lead_capture", "support", "info"]);
export const Sentiment = z.enum(["positive", "negative", "neutral"]);
export const Urgency = z.enum(["high", "normal"]);
export type Intent = z.infer<typeof Intent>;
export type Sentiment = z.infer<typeof Sentiment>;
export type Urgency = z.infer<typeof Urgency>;

export const Probability = z.number().min(0).max(1);

export const Enrichment = z.object({
  intent: Intent,
  sentiment: Sentiment,
  urgency: Urgency,
  /** The keyword model's baseline score. */
  score: Probability,
});
export type Enrichment = z.infer<typeof Enrichment>;

export const OUTCOMES = ["booked", "ghosted", "qualified", "unqualified", "nurture", "spam"] as const;
export const Outcome = z.enum(OUTCOMES);
export type Outcome = z.infer<typeof Outcome>;
/** Outcomes after which no further follow-up is sent, unless a plan names its own (its sequence's stop_on). */
export const STOPPING_OUTCOMES: readonly Outcome[] = ["booked", "unqualified", "spam"];
/** Whether the outcome stops follow-ups planned with `stopOn` (a plan's stop_on; absent: STOPPING_OUTCOMES). */
export function stopsFollowups(outcome: Outcome, stopOn?: readonly string[]): boolean {
  return (stopOn ?? STOPPING_OUTCOMES).includes(outcome);
}

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

export const LEAD_DETAILS_MAX = 2000;

/** `POST /v1/lead`: the fields of the system it replaces, plus optional e-mail and time zone. */
export const LeadRequest = z
  .object({
    name: z
      .string()
      .trim()
      .min(2, "must be at least 2 characters")
      .max(200, "must be at most 200 characters"),
    phone: z
      .string()
      .trim()
      .min(7, "must be at least 7 characters")
      .max(32, "must be at most 32 characters")
      .regex(/^\+?[0-9 ().-]+$/, "may hold only digits, spaces, '+', '(', ')', '.' and '-'"),
    details: z.string().max(LEAD_DETAILS_MAX, `must be at most ${LEAD_DETAILS_MAX} characters`).default(""),
    email: z.email("must be an e-mail address").max(254).optional(),
    timezone: z
      .string()
      .max(64)
      .refine(isTimeZone, { message: "must be an IANA time zone such as Europe/Paris" })
      .optional(),
  })
  .meta({ id: "LeadRequest", description: "Body of POST /v1/lead" });
export type LeadRequest = z.infer<typeof LeadRequest>;

/** `POST /v1/lead/:id/outcome`. */
export const OutcomeRequest = z
  .object({
    outcome: Outcome,
    notes: z.string().max(2000, "must be at most 2000 characters").optional(),
  })
  .meta({ id: "OutcomeRequest", description: "Body of POST /v1/lead/:id/outcome" });
export type OutcomeRequest = z.infer<typeof OutcomeRequest>;

export const RecordedOutcome = z.object({
  outcome: Outcome,
  notes: z.string().optional(),
  recorded_at: z.iso.datetime(),
});
export type RecordedOutcome = z.infer<typeof RecordedOutcome>;

/**
 * A lead as stored in the `leads` KV bucket under `<tenant>.<leadId>`. The only place
 * personal data (name, phone, e-mail, details) is kept: events carry ids and scores only.
 */
export const StoredLead = z
  .looseObject({
    lead_id: Token,
    tenant: Token,
    name: z.string(),
    phone: z.string(),
    email: z.string().optional(),
    timezone: z.string().optional(),
    details: z.string(),
    enrichment: Enrichment,
    pred_prob: Probability,
    model_version: z.string(),
    created_at: z.iso.datetime(),
    outcome: RecordedOutcome.optional(),
    /** Set when follow-ups were stopped for another reason than an outcome. */
    cancelled_at: z.iso.datetime().optional(),
  })
  .meta({ id: "StoredLead", description: "Value of a lead in the leads KV bucket" });
export type StoredLead = z.infer<typeof StoredLead>;

/**
 * Only what decides whether a lead's follow-ups stop: a reader that needs no more parses no
 * more, so a lead whose other fields break their contract still stops on its outcome.
 */
export const LeadStopState = StoredLead.pick({ outcome: true, cancelled_at: true });
export type LeadStopState = z.infer<typeof LeadStopState>;

/** Why a lead's follow-ups stop: a stopping outcome, a cancellation, or no lead stored. */
export const STOP_REASONS = ["outcome", "cancelled", "lead_missing"] as const;
export type StopReason = (typeof STOP_REASONS)[number];

/**
 * Does this lead's follow-ups stop, and why: the one decision the scheduler (at due time), the
 * dispatcher (before a call) and lead-intake (the lead view) share. `null` for the lead means
 * it is not stored; the answer `null` means its follow-ups go ahead. `stopOn` is the plan's
 * stop_on (its sequences' stopping outcomes); absent, STOPPING_OUTCOMES.
 */
export function stopReason(lead: LeadStopState | null, stopOn?: readonly string[]): StopReason | null {
  if (lead === null) return "lead_missing";
  if (lead.outcome && stopsFollowups(lead.outcome.outcome, stopOn)) return "outcome";
  if (lead.cancelled_at !== undefined) return "cancelled";
  return null;
}
