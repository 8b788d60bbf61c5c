import {
  encodeEvent,
  followupMsgId,
  idempotencyKey,
  type LeadRef,
  makeEvent,
  type PlannedStep,
  parseFollowupSubject,
  type StepRef,
  type StopReason,
  subjects,
} from "@followup/contracts";
import { pause, readStopReason } from "@followup/service-kit";
import type { JsMsg } from "@nats-io/jetstream";
import { purgeDue } from "./cancel.js";
import type { HandlerDeps } from "./handler.js";
import type { MarkerDeletes } from "./marker-deletes.js";
import type { StoredPlan } from "./plans.js";
import { markerTiming } from "./schedule.js";
import { SOURCE } from "./timers.js";

export type MarkerDeps = HandlerDeps & {
  /** FOLLOWUP_CHANNEL: the channel every due follow-up goes through. */
  channel: string;
  /** Where handled markers go to be deleted, off the firing path. */
  markerDeletes: MarkerDeletes;
};

export const MARKER_REASON_HEADER = "Nats-Marker-Reason";

/**
 * How long after due_at a follow-up whose lead is not in the `leads` bucket is asked about
 * again (every LEAD_MISSING_RETRY_MS) before it is stopped as `lead_missing`: long enough for
 * lead-intake's outbox to drain after a broker outage it rode out.
 */
export const LEAD_MISSING_GRACE_MS = 15 * 60_000;
const LEAD_MISSING_RETRY_MS = 2_000;

/**
 * A message of the timer stream. The timer's own delivery (no marker header) is only acked. Its
 * expiry marker (`Nats-Marker-Reason: MaxAge`, empty body: jetstream-facts 4) makes the step due:
 * the plan says when and whether it is still pending, the marker is held until due_at (it comes
 * up to a second early, by the floor-rounded TTL), the lead is read again for an outcome that
 * stops it, and only then is `followup.due` published, the step marked due, the marker acked and
 * deleted. A marker seen twice finds the step due already; a crash between the publish and the
 * plan update republishes with the same Nats-Msg-Id, inside the work queue's duplicate window.
 *
 * The order after the publish stays plan, ack, delete: a failed plan update leaves the marker
 * unacked, so it comes back and the update is retried (its due publish dropped as a duplicate);
 * and a deleted marker always belongs to a step no longer pending, which is what lets a
 * redelivered lead.scored republish any pending step's missing timer. What is off the firing
 * path is what nothing waits for: the plan and the lead are read together (the lead again after
 * a hold), the plan update starts from the revision just read, and the deletion is queued.
 */
export async function handleTimerMessage(msg: JsMsg, deps: MarkerDeps): Promise<void> {
  const reason = msg.headers?.get(MARKER_REASON_HEADER);
  if (!reason) {
    msg.ack();
    return;
  }
  if (reason !== "MaxAge") {
    // Only an expiry makes a follow-up due; other markers (not written by 2.15) are left alone.
    deps.logger.debug({ subject: msg.subject, reason }, "marker_ignored");
    msg.ack();
    return;
  }
  const receivedAt = deps.now().getTime();
  const ref = parseFollowupSubject(msg.subject, "timer");
  const log = deps.logger.child({ tenant: ref.tenant, lead_id: ref.leadId, step: ref.step });

  // The lead is read now too (not only after a hold): in a burst markers come after due_at, and
  // then this read is the one at due time, a round trip saved per follow-up.
  const [stored, stopAtArrival] = await Promise.all([deps.plans.get(ref), readStopReason(deps.leads, ref)]);
  const step = stored?.plan.steps.find((s) => s.step === ref.step);
  if (!stored || !step) {
    log.error("marker_without_planned_step_discarded");
    await settleMarker(msg, deps);
    return;
  }
  if (step.state === "due") {
    log.debug("marker_seen_again_step_already_due");
    await settleMarker(msg, deps);
    return;
  }
  if (step.state === "cancelled" || stored.plan.cancelled) {
    if (await markCancelled(ref, deps, stored)) deps.metrics.cancelled.inc({ stage: "pending" });
    log.debug("marker_of_cancelled_step");
    await settleMarker(msg, deps);
    return;
  }

  const dueAtMs = Date.parse(step.due_at);
  const timing = markerTiming(dueAtMs, receivedAt);
  if (timing.action === "retry_later") {
    log.warn({ due_at: step.due_at, early_ms: timing.ms }, "marker_too_early_retrying_at_due_time");
    msg.nak(timing.ms);
    return;
  }
  // Held until due_at: an outcome may have been recorded meanwhile, so read the lead again.
  const stop = timing.action === "hold" ? await holdThenStopReason(dueAtMs, ref, deps) : stopAtArrival;
  if (stop === "lead_missing" && deps.now().getTime() - dueAtMs < LEAD_MISSING_GRACE_MS) {
    // lead-intake writes the lead and publishes lead.scored together; when only the event
    // landed, the lead waits in intake's outbox. Ask again later rather than drop the follow-up.
    log.warn({ due_at: step.due_at }, "lead_not_stored_yet_retrying");
    msg.nak(LEAD_MISSING_RETRY_MS);
    return;
  }
  if (stop) {
    if (await markCancelled(ref, deps, stored)) deps.metrics.cancelled.inc({ stage: "pending" });
    log.info({ reason: stop }, "followup_stopped_at_due_time");
    await settleMarker(msg, deps);
    return;
  }

  // Taken before the publish, not after its ack: the dispatcher may deliver (and record its
  // result) before a slow ack returns, and the lead's timeline must not show a step delivered
  // before it was due.
  const publishedAt = deps.now().getTime();
  const duplicate = await publishDue(ref, step, stored.plan, new Date(receivedAt), deps);
  const updated = await deps.plans.update(
    ref,
    (plan) => {
      const current = plan.steps.find((s) => s.step === ref.step);
      if (current?.state !== "pending") return null;
      const duePublishedAt = new Date(publishedAt).toISOString();
      return {
        ...plan,
        steps: plan.steps.map((s) =>
          s.step === ref.step ? { ...s, state: "due" as const, due_published_at: duePublishedAt } : s,
        ),
      };
    },
    stored,
  );
  if (updated?.plan.cancelled) {
    // The outcome's purge may have run before this publish: take the due message back out.
    const purged = await purgeDue(deps.jsm, deps.topology, ref);
    if (purged > 0) deps.metrics.cancelled.inc({ stage: "queued" }, purged);
    log.info({ purged }, "followup_due_withdrawn_plan_cancelled_meanwhile");
  } else if (duplicate) {
    // Published before by a handler that stopped before marking the step: the queue dropped this one.
    log.info("followup_due_already_published");
  } else {
    const latenessMs = publishedAt - dueAtMs;
    deps.metrics.due.inc();
    deps.metrics.markerToDue.observe((publishedAt - receivedAt) / 1000);
    deps.metrics.dueLateness.observe(Math.max(0, latenessMs) / 1000);
    log.info({ lateness_ms: latenessMs, held_ms: timing.action === "hold" ? timing.ms : 0 }, "followup_due");
  }
  await settleMarker(msg, deps);
}

/** Publishes the due follow-up; true when the work queue dropped it as a duplicate (same Nats-Msg-Id). */
async function publishDue(
  ref: StepRef,
  step: PlannedStep,
  plan: { lead_created_at: string; pred_prob: number },
  firedAt: Date,
  deps: MarkerDeps,
): Promise<boolean> {
  const event = makeEvent("followup.due.v1", {
    source: SOURCE,
    subject: `${ref.leadId}/${ref.step}`,
    tenant: ref.tenant,
    data: {
      lead_id: ref.leadId,
      step: ref.step,
      delay_s: step.delay_s,
      due_at: step.due_at,
      idempotency_key: idempotencyKey(ref),
      channel: deps.channel,
      lead_created_at: plan.lead_created_at,
      pred_prob: plan.pred_prob,
      fired_at: firedAt.toISOString(),
      replays: 0,
    },
  });
  const ack = await deps.js.publish(
    subjects.followupDue(ref.tenant, ref.leadId, ref.step),
    encodeEvent(event),
    { msgID: followupMsgId(ref) },
  );
  return ack.duplicate;
}

/** Marks a pending step cancelled; true when this call changed it. */
async function markCancelled(ref: StepRef, deps: MarkerDeps, known: StoredPlan): Promise<boolean> {
  const updated = await deps.plans.update(
    ref,
    (plan) => {
      if (plan.steps.find((s) => s.step === ref.step)?.state !== "pending") return null;
      return {
        ...plan,
        steps: plan.steps.map((s) => (s.step === ref.step ? { ...s, state: "cancelled" as const } : s)),
      };
    },
    known,
  );
  return updated?.changed ?? false;
}

/**
 * Acks the marker, then hands it to be deleted so the stream keeps only what is still to do.
 * Nothing waits for the deletion (see MarkerDeletes); this waits only if too many are queued.
 */
async function settleMarker(msg: JsMsg, deps: MarkerDeps): Promise<void> {
  msg.ack();
  await deps.markerDeletes.add(msg.seq, msg.subject);
}

async function holdThenStopReason(
  dueAtMs: number,
  ref: LeadRef,
  deps: MarkerDeps,
): Promise<StopReason | null> {
  await holdUntil(dueAtMs, deps.now);
  return readStopReason(deps.leads, ref);
}

/** Waits until the clock reads `epochMs` (a timer can fire a millisecond early: never publish early). */
async function holdUntil(epochMs: number, now: () => Date): Promise<void> {
  for (;;) {
    const left = epochMs - now().getTime();
    if (left <= 0) return;
    await pause(left);
  }
}
