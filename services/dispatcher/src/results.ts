import {
  type AttemptResult,
  type FollowupDead,
  type FollowupDueData,
  type FollowupResult,
  makeEvent,
} from "@followup/contracts";

/** The `source` of every event the dispatcher publishes. */
export const SOURCE = "/dispatcher";

type EventOfDue = { tenant: string; due: FollowupDueData; channel: string; time: Date };

/** The envelope fields of a result or dead letter of a due follow-up. */
function envelope(fields: EventOfDue) {
  return {
    source: SOURCE,
    subject: `${fields.due.lead_id}/${fields.due.step}`,
    tenant: fields.tenant,
    time: fields.time,
  };
}

/** What identifies the follow-up in a result or dead letter: the due follow-up's own fields. */
function deliveryRef({ due, channel }: EventOfDue) {
  const { lead_id, step, delay_s, due_at, idempotency_key } = due;
  return { lead_id, step, delay_s, due_at, idempotency_key, channel };
}

/** The result of one attempt, as published on `followup.result.<tenant>.<leadId>.<step>`. */
export function resultEvent(
  fields: EventOfDue & {
    attempt: number;
    result: AttemptResult;
    statusCode: number | null;
    error?: string | undefined;
    durationMs: number;
    retryInMs?: number | undefined;
    latenessMs?: number | undefined;
    provider?: string | undefined;
    providerMessageId?: string | undefined;
    reason?: string | undefined;
  },
): FollowupResult {
  return makeEvent("followup.result.v1", {
    ...envelope(fields),
    data: {
      ...deliveryRef(fields),
      attempt: fields.attempt,
      result: fields.result,
      status_code: fields.statusCode,
      ...(fields.error !== undefined ? { error: fields.error } : {}),
      duration_ms: Math.max(0, Math.round(fields.durationMs)),
      ...(fields.retryInMs !== undefined ? { retry_in_ms: fields.retryInMs } : {}),
      ...(fields.latenessMs !== undefined ? { lateness_ms: fields.latenessMs } : {}),
      ...(fields.provider !== undefined ? { provider: fields.provider } : {}),
      ...(fields.providerMessageId !== undefined ? { provider_message_id: fields.providerMessageId } : {}),
      ...(fields.reason !== undefined ? { reason: fields.reason } : {}),
    },
  });
}

/** A follow-up that could not be delivered, with the due follow-up as received so a replay can resend it. */
export function deadLetterEvent(
  fields: EventOfDue & {
    attempts: number;
    reason: "permanent" | "exhausted";
    lastStatusCode: number | null;
    lastError: string;
  },
): FollowupDead {
  return makeEvent("followup.dead.v1", {
    ...envelope(fields),
    data: {
      ...deliveryRef(fields),
      attempts: fields.attempts,
      reason: fields.reason,
      last_status_code: fields.lastStatusCode,
      last_error: fields.lastError,
      due: fields.due,
    },
  });
}
