import { z } from "zod";
import { FollowupDead, LeadOutcomeData } from "./events.js";
import { Intent, Probability, Sentiment, StoredLead, Token, Urgency } from "./lead.js";
import { SequenceName } from "./sequences.js";
import { MAX_STEP } from "./subjects.js";

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
  /** 400: the request could not be parsed as HTTP (a raw space in the path, a bad %-escape, no Host). */
  "bad_request",
  "unauthorized",
  "validation_error",
  "invalid_json",
  "payload_too_large",
  "unsupported_media_type",
  "rate_limited",
  "not_found",
  /** 408: the request's headers, or the whole request, did not arrive in time. */
  "request_timeout",
  /** 431: the request line and headers are larger than the server accepts. */
  "headers_too_large",
  "invalid_signature",
  "conflict",
  /** 412: an If-Match named a revision that is not the current one (or the record does not exist). */
  "revision_mismatch",
  /** 409: the deployment lacks what the request needs (CHANNEL_SECRETS_KEY for channel secrets). */
  "not_configured",
  /** 403: the caller is authenticated but may not do this (a deployment-wide operation). */
  "forbidden",
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

/** `suppressed`: its recipient is on the tenant's suppression list, so nothing was sent. */
export const FollowupStatus = z.enum(["pending", "due", "delivered", "failed", "cancelled", "suppressed"]);
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
  /** The sequence the step belongs to (absent for plans made before sequences). */
  sequence: z.string().optional(),
  /** The step's channel and template (absent: the deployment's FOLLOWUP_CHANNEL, the built-in message). */
  channel: z.string().optional(),
  template: z.string().optional(),
  /** The experiment's variant the lead was assigned for this step (its template is `template`). */
  variant: z.string().optional(),
  /** Where a send window moved the step: its raw due time (start + delay); due_at is the moved time. */
  moved_from: z.iso.datetime().optional(),
  /** An SMS step whose quiet hours were read in UTC: no zone of the recipient was known. */
  timezone_assumed: z.boolean().optional(),
  /** The provider's last report on the sent message (Twilio's status callback). */
  provider_status: z.enum(["delivered", "undelivered", "failed"]).optional(),
});
export type LeadFollowup = z.infer<typeof LeadFollowup>;

/** `POST /v1/lead/:id/enroll`. */
export const EnrolRequest = z
  .strictObject({ sequence: SequenceName })
  .meta({ id: "EnrolRequest", description: "Body of POST /v1/lead/:id/enroll" });
export type EnrolRequest = z.infer<typeof EnrolRequest>;

/**
 * What an enrolment or an unenrolment did: `accepted` (published; the scheduler applies it) or
 * `already_enrolled` (the lead's plan has the sequence's steps: nothing is added twice).
 */
export const EnrolmentAccepted = z
  .object({
    lead_id: Token,
    sequence: z.string().optional(),
    status: z.enum(["accepted", "already_enrolled"]),
    requested_at: z.iso.datetime(),
  })
  .meta({
    id: "EnrolmentAccepted",
    description: "data of the response to POST /v1/lead/:id/enroll and /unenroll",
  });
export type EnrolmentAccepted = z.infer<typeof EnrolmentAccepted>;

export const TimelineEntry = z.object({
  at: z.iso.datetime(),
  /** What happened: scored, scheduled, outcome, due, attempt_ok, attempt_error, dead, suppressed, provider_report, replayed, hook_received, cancelled. */
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
    /** Enrolled in its sequence's holdout (an experiment): planned, and sent nothing on purpose. */
    holdout: z.boolean().optional(),
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

/** `GET /v1/lead/:id` and `POST /v1/lead/:id/outcome`: the lead named by the path. */
export const LeadParams = z
  .object({ id: Token })
  .meta({ id: "LeadParams", description: "Path parameters of /v1/lead/:id" });
export type LeadParams = z.infer<typeof LeadParams>;

const REVISION_LIST = /^\s*(\*|"?[1-9]\d{0,15}"?(\s*,\s*"?[1-9]\d{0,15}"?)*)\s*$/;

/**
 * Headers of a conditional write (`PUT`, `DELETE` of a stored record): `If-Match` names the
 * revision (the ETag) the caller read, quoted or not, several separated by commas, or `*` for any
 * current one. The other headers pass through untouched.
 */
export const ConditionalHeaders = z.looseObject({
  "if-match": z
    .string()
    .regex(
      REVISION_LIST,
      'must be a revision such as "12" (quotes optional), several separated by commas, or *',
    )
    .optional()
    .describe(
      "The revision (ETag) the change is based on; another current revision is 412 revision_mismatch",
    ),
});
export type ConditionalHeaders = z.infer<typeof ConditionalHeaders>;

/** At most this many dead letters per listing, and per replay call. */
export const DEAD_LETTER_LIMIT_MAX = 1000;
/** Dead letters a listing returns when it names no limit. */
export const DEAD_LETTER_LIMIT_DEFAULT = 100;

/** An integer from 1 to `max` given as query-string text; every way to miss says the rule. */
export function queryIntegerUpTo(max: number) {
  const rule = `must be an integer from 1 to ${max}`;
  return z.coerce.number({ error: rule }).int(rule).min(1, rule).max(max, rule);
}

/** `GET /ops/dead-letters?lead_id=&step=&limit=` (the tenant is the API key's). */
export const DeadLetterQuery = z
  .object({
    lead_id: Token.optional(),
    step: queryIntegerUpTo(MAX_STEP).optional(),
    /** Default DEAD_LETTER_LIMIT_DEFAULT. */
    limit: queryIntegerUpTo(DEAD_LETTER_LIMIT_MAX).optional(),
  })
  .meta({ id: "DeadLetterQuery", description: "Query of GET /ops/dead-letters" });
export type DeadLetterQuery = z.infer<typeof DeadLetterQuery>;

/** `POST /ops/dead-letters/replay`: which of the tenant's dead letters; no body replays them all. */
export const DeadLetterReplayRequest = z
  .object({
    lead_id: Token.optional(),
    step: z.number().int().min(1).max(MAX_STEP).optional(),
  })
  .meta({ id: "DeadLetterReplayRequest", description: "Body of POST /ops/dead-letters/replay" });
export type DeadLetterReplayRequest = z.infer<typeof DeadLetterReplayRequest>;

export const DeadLetterItem = z.object({
  /** The dead letter's sequence in FOLLOWUP_DLQ. */
  seq: z.number().int().min(1),
  subject: z.string(),
  /** When the stream stored it. */
  received_at: z.iso.datetime(),
  event: FollowupDead,
});
export type DeadLetterItem = z.infer<typeof DeadLetterItem>;

export const DeadLetterList = z
  .object({ count: z.number().int().min(0), dead_letters: z.array(DeadLetterItem) })
  .meta({ id: "DeadLetterList", description: "data of the response to GET /ops/dead-letters" });
export type DeadLetterList = z.infer<typeof DeadLetterList>;

export const DeadLettersReplayed = z
  .object({
    replayed: z.number().int().min(0),
    /** At most DEAD_LETTER_LIMIT_MAX per call: when true, call again for the rest. */
    more: z.boolean(),
    items: z.array(
      z.object({
        seq: z.number().int().min(1),
        lead_id: Token,
        step: z.number().int().min(1),
        idempotency_key: z.string(),
      }),
    ),
  })
  .meta({ id: "DeadLettersReplayed", description: "data of the response to POST /ops/dead-letters/replay" });
export type DeadLettersReplayed = z.infer<typeof DeadLettersReplayed>;
