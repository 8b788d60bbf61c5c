import {
  encodeEvent,
  followupMsgId,
  type LeadRef,
  makeEvent,
  type PlannedStep,
  subjects,
} from "@followup/contracts";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/transport-node";
import { type AtomicMessage, publishHeaders } from "./atomic-batch.js";
import { isWrongLastSequence } from "./jetstream-errors.js";

/**
 * A follow-up's timer on FOLLOWUP_TIMERS, built in one place for the two services that write
 * them: the scheduler (a lead's first step) and the dispatcher (the next step, when a marker
 * fires). Its expiry marker is what makes the step due.
 */

/**
 * The Nats-TTL of a timer, in whole seconds: `max(1, floor((due_at - now) / 1 s))`. Rounding
 * down makes the marker arrive at most one second before due_at (never after it, beyond the
 * server's expiry latency); the dispatcher holds it for the remaining fraction. The server's
 * minimum is 1 s, so a step due in less than a second (or already past) fires one second out.
 */
export function timerTtlSeconds(dueAtMs: number, nowMs: number): number {
  return Math.max(1, Math.floor((dueAtMs - nowMs) / 1000));
}

/** Whether a timer was stored now, or its subject held a message (the timer or a fired step's marker). */
export type TimerStored = "published" | "existing";

/** A step's timer: on its own subject, with its TTL, its message id, and stored only on an empty subject. */
export function timerMessage(ref: LeadRef, step: PlannedStep, now: Date, source: string): AtomicMessage {
  const timer = timerParts(ref, step, now, source);
  return { subject: timer.subject, data: timer.data, headers: timer.headers() };
}

/**
 * A timer whose headers are made anew for each use (an atomic batch adds its own to them, so a
 * batch refused and published again message by message needs fresh ones), with the same TTL.
 */
export function timerParts(
  ref: LeadRef,
  step: PlannedStep,
  now: Date,
  source: string,
): Omit<AtomicMessage, "headers"> & { headers: () => MsgHdrs } {
  const ttl = timerTtlSeconds(Date.parse(step.due_at), now.getTime());
  const event = makeEvent("followup.timer.v1", {
    source,
    subject: `${ref.leadId}/${step.step}`,
    tenant: ref.tenant,
    data: { lead_id: ref.leadId, step: step.step, delay_s: step.delay_s, due_at: step.due_at, ttl_s: ttl },
  });
  return {
    subject: subjects.followupTimer(ref.tenant, ref.leadId, step.step),
    data: encodeEvent(event),
    headers: () =>
      publishHeaders({
        msgId: followupMsgId({ ...ref, step: step.step }),
        ttl: String(ttl),
        expectLastSubjectSequence: 0,
      }),
  };
}

/**
 * Publishes one timer unless its subject holds a message already: the expected last subject
 * sequence 0 makes that check and the publish one atomic step on the server. With one message
 * per subject, publishing over an existing timer would replace it and push it back.
 */
export async function publishTimer(js: JetStreamClient, timer: AtomicMessage): Promise<TimerStored> {
  try {
    const ack = await js.publish(timer.subject, timer.data, { headers: timer.headers });
    return ack.duplicate ? "existing" : "published";
  } catch (err) {
    if (isWrongLastSequence(err)) return "existing";
    throw err;
  }
}
