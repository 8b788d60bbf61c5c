import { z } from "zod";
import { LeadOutcomeData } from "./events.js";
import { Intent, Probability, Sentiment, StoredLead, Token, Urgency } from "./lead.js";

/** The body a channel's HTTP hook receives: the payload of the system it replaces, plus where and when. */
export const HookPayload = z
  .looseObject({
    lead_id: Token,
    /** `"<delay>s"`, as the system it replaces named a schedule step. */
    strategy: z.string().max(64),
    message: z.string().max(500),
    /** When the call was made (ISO 8601). */
    ts: z.string(),
    tenant: Token.optional(),
    step: z.number().int().min(1).optional(),
    due_at: z.iso.datetime().optional(),
    attempt: z.number().int().min(1).optional(),
  })
  .meta({ id: "HookPayload", description: "Body of a follow-up delivered to an HTTP hook" });
export type HookPayload = z.infer<typeof HookPayload>;

export const ERROR_CODES = [
  "unauthorized",
  "validation_error",
  "invalid_json",
  "payload_too_large",
  "unsupported_media_type",
  "rate_limited",
  "not_found",
  "invalid_signature",
  "conflict",
  "service_unavailable",
  "internal_error",
] as const;
export const ErrorCode = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const ErrorDetail = z.object({
  /** The field, as a dotted path (`phone`, `details`, `(root)`). */
  path: z.string(),
  message: z.string(),
});
export type ErrorDetail = z.infer<typeof ErrorDetail>;

/** Every failed response: `{ok: false, error: {code, message, details}, request_id}`. */
export const ErrorEnvelope = z
  .object({
    ok: z.literal(false),
    error: z.object({
      code: ErrorCode,
      message: z.string(),
      details: z.array(ErrorDetail).optional(),
    }),
    request_id: z.string(),
  })
  .meta({ id: "ErrorEnvelope", description: "Body of every failed response" });
export type ErrorEnvelope = z.infer<typeof ErrorEnvelope>;

/** Every successful response: `{ok: true, data}`. */
export function okEnvelope<D extends z.ZodType>(data: D) {
  return z.object({ ok: z.literal(true), data });
}

export const LeadAccepted = z
  .object({
    lead_id: Token,
    intent: Intent,
    sentiment: Sentiment,
    urgency: Urgency,
    score: Probability,
    pred_prob: Probability,
    /** `local` when NATS was unreachable and the lead waits in lead-intake's durable outbox. */
    queued: z.enum(["published", "local"]).optional(),
  })
  .meta({ id: "LeadAccepted", description: "data of the response to POST /v1/lead" });
export type LeadAccepted = z.infer<typeof LeadAccepted>;

export const FollowupStatus = z.enum(["pending", "due", "delivered", "failed", "cancelled"]);
export type FollowupStatus = z.infer<typeof FollowupStatus>;

export const LeadFollowup = z.object({
  step: z.number().int().min(1),
  delay_s: z.number().positive(),
  strategy: z.string(),
  due_at: z.iso.datetime(),
  status: FollowupStatus,
  attempts: z.number().int().min(0),
  last_status_code: z.number().int().nullable().optional(),
  last_error: z.string().optional(),
  delivered_at: z.iso.datetime().optional(),
});
export type LeadFollowup = z.infer<typeof LeadFollowup>;

export const TimelineEntry = z.object({
  at: z.iso.datetime(),
  /** What happened: scored, scheduled, outcome, due, attempt_ok, attempt_error, dead, hook_received, cancelled. */
  event: z.string(),
  step: z.number().int().optional(),
  detail: z.record(z.string(), z.unknown()).optional(),
});
export type TimelineEntry = z.infer<typeof TimelineEntry>;

export const LeadView = z
  .object({
    /** The stored lead, less what is the engine's own business (its tenant, a cancellation). */
    lead: z.object(StoredLead.shape).omit({ tenant: true, cancelled_at: true }),
    /** Whether the scheduler planned follow-ups; null until it has seen the lead. */
    qualified: z.boolean().nullable(),
    followups: z.array(LeadFollowup),
    timeline: z.array(TimelineEntry),
  })
  .meta({ id: "LeadView", description: "data of the response to GET /v1/lead/:id" });
export type LeadView = z.infer<typeof LeadView>;

/** What the `lead.outcome` event says, less the notes. */
export const OutcomeAccepted = z
  .object(LeadOutcomeData.shape)
  .omit({ notes: true })
  .meta({ id: "OutcomeAccepted", description: "data of the response to POST /v1/lead/:id/outcome" });
export type OutcomeAccepted = z.infer<typeof OutcomeAccepted>;

/** `GET /ops/followup/queue`, compatible with the system it replaces. */
export const QueueStatus = z
  .object({
    enabled: z.boolean(),
    queue: z.string(),
    jobs: z.object({
      /** Due follow-ups waiting for (or in) delivery. */
      queued: z.number().int().min(0),
      /** Timers not yet expired. */
      scheduled: z.number().int().min(0),
      /** Dead letters not yet replayed. */
      dead: z.number().int().min(0),
    }),
    /** Why `enabled` is false or the numbers are missing (NATS unreachable, follow-ups disabled). */
    reason: z.string().optional(),
    /**
     * Leads this lead-intake accepted while JetStream could not take them, waiting in its durable
     * local outbox (fail-open); `queued > 0` means it runs degraded. Absent without an outbox.
     */
    outbox: z
      .object({
        queued: z.number().int().min(0),
        capacity: z.number().int().min(0),
        draining: z.boolean(),
      })
      .optional(),
  })
  .meta({ id: "QueueStatus", description: "Body of GET /ops/followup/queue" });
export type QueueStatus = z.infer<typeof QueueStatus>;

/** `POST /ops/followup-hook` answers exactly this, as the system it replaces did. */
export const HookAck = z
  .object({ ok: z.literal(true), message: z.literal("Follow-up hook received") })
  .meta({ id: "HookAck", description: "Body of the response of POST /ops/followup-hook" });
export type HookAck = z.infer<typeof HookAck>;
