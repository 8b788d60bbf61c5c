import {
  type AttemptResult,
  type FollowupDead,
  type FollowupDueData,
  type FollowupResult,
  makeEvent,
} from "@followup/contracts";

/** The `source` of every event the dispatcher publishes. */
export const SOURCE = "/dispatcher";

function eventSubject(due: FollowupDueData): string {
  return `${due.lead_id}/${due.step}`;
}

function ref(due: FollowupDueData) {
  return { lead_id: due.lead_id, step: due.step, delay_s: due.delay_s, due_at: due.due_at };
}

/** The outcome of one attempt, as published on `followup.result.<tenant>.<leadId>.<step>`. */
export function resultEvent(fields: {
  tenant: string;
  due: FollowupDueData;
  channel: string;
  attempt: number;
  result: AttemptResult;
  statusCode: number | null;
  error?: string | undefined;
  durationMs: number;
  retryInMs?: number | undefined;
  latenessMs?: number | undefined;
  time: Date;
}): FollowupResult {
  return makeEvent("followup.result.v1", {
    source: SOURCE,
    subject: eventSubject(fields.due),
    tenant: fields.tenant,
    time: fields.time,
    data: {
      ...ref(fields.due),
      idempotency_key: fields.due.idempotency_key,
      channel: fields.channel,
      attempt: fields.attempt,
      result: fields.result,
      status_code: fields.statusCode,
      ...(fields.error !== undefined ? { error: fields.error } : {}),
      duration_ms: Math.max(0, Math.round(fields.durationMs)),
      ...(fields.retryInMs !== undefined ? { retry_in_ms: fields.retryInMs } : {}),
      ...(fields.latenessMs !== undefined ? { lateness_ms: fields.latenessMs } : {}),
    },
  });
}

/**
 * One result per delivery (a crash or a hand-back is a new delivery, so a new attempt): a result
 * re-published after a crash within the stream's duplicate window is stored once.
 */
export function resultMsgId(due: FollowupDueData, attempt: number): string {
  return `${due.lead_id}:${due.step}:result:${due.replays}:${attempt}`;
}

/** A follow-up that could not be delivered, with the due follow-up as received so a replay can resend it. */
export function deadLetterEvent(fields: {
  tenant: string;
  due: FollowupDueData;
  channel: string;
  attempts: number;
  reason: "permanent" | "exhausted";
  lastStatusCode: number | null;
  lastError: string;
  time: Date;
}): FollowupDead {
  return makeEvent("followup.dead.v1", {
    source: SOURCE,
    subject: eventSubject(fields.due),
    tenant: fields.tenant,
    time: fields.time,
    data: {
      ...ref(fields.due),
      idempotency_key: fields.due.idempotency_key,
      channel: fields.channel,
      attempts: fields.attempts,
      reason: fields.reason,
      last_status_code: fields.lastStatusCode,
      last_error: fields.lastError,
      due: fields.due,
    },
  });
}

/** One dead letter per follow-up and replay: a dead letter re-published after a crash is stored once. */
export function deadLetterMsgId(due: FollowupDueData): string {
  return `${due.lead_id}:${due.step}:dead:${due.replays}`;
}
