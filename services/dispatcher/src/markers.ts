import {
  decodeEvent,
  decodePlan,
  type FollowupDueData,
  type FollowupPlan,
  idempotencyKey,
  leadKey,
  MARKER_REASON_HEADER,
  nextTimedStep,
  type PlannedStep,
  parseFollowupSubject,
  type StepRef,
  type StopReason,
  subjects,
} from "@followup/contracts";
import { type KvReader, pause, readStopState, stopReasonOf, timerParts } from "@followup/service-kit";
import { type DeliveryControl, type DeliveryDeps, deliver } from "./delivery.js";
import type { BatchedMessage } from "./result-batches.js";
import { SOURCE } from "./results.js";
import { type HeldDue, onBroker, release } from "./settle.js";

/**
 * How long after due_at a follow-up whose lead is not in the `leads` bucket is waited for
 * (asked about every LEAD_MISSING_RETRY_MS) before it is stopped as `lead_missing`: long enough
 * for lead-intake's outbox to drain after a broker outage it rode out.
 */
export const LEAD_MISSING_GRACE_MS = 15 * 60_000;

/**
 * How long a marker whose plan cannot be read is held and asked about again (every
 * PLAN_MISSING_RETRY_MS) before it is discarded. A timer is written only after its plan is
 * committed, so a plan missing at a marker is a read that came too early (a broker restarting
 * while the timers that ran out meanwhile fire), not a follow-up without a plan; discarding at
 * once would drop it silently.
 */
export const PLAN_MISSING_GRACE_MS = 2 * 60_000;
export const PLAN_MISSING_RETRY_MS = 2_000;

/**
 * Timer messages one dispatcher copy holds at once by default (MARKER_CONCURRENCY): enough for
 * every channel's calls in flight and the results waiting to share a batch, and no more. Each
 * held marker is a pending entry of `dispatcher-markers`, and every expiry costs nats-server a
 * copy of that durable's whole pending state: the marker it stores is a subject rollup, whose
 * purge rewrites the state of each consumer on the stream (consumer.purge, writeStoreState). In
 * a burst of 20k that copy was a fifth of the server's CPU with 1000 held; with 250, the server
 * spent 0.83x as much per follow-up (docs/benchmarks.md, "Fewer markers held").
 */
export const MARKER_CONCURRENCY = 250;

export interface MarkerDeps extends DeliveryDeps {
  /**
   * The followup_plans bucket (read in batches: BatchedKvReads): what the marker's step is
   * (due_at, delay) and whether it still is.
   */
  plans: KvReader;
  /** FOLLOWUP_TIMERS, in atomic batches: the next step's timer, stored before the marker is acked. */
  timers: { publishMessage(message: BatchedMessage): Promise<void> };
  /** FOLLOWUP_CHANNEL: the channel of a timer's follow-up whose planned step names none. */
  channel: string;
  /** The last message stored on a FOLLOWUP_RESULTS subject, or null. */
  readLastResult: (subject: string) => Promise<Uint8Array | null>;
}

/**
 * A message of the timer stream, through the dispatcher's own durable: the follow-up is
 * delivered where its marker is consumed, with no `followup.due` hop. The timer's own delivery
 * (no marker header) is only acked (limits retention: no write). Its expiry marker
 * (`Nats-Marker-Reason: MaxAge`, empty body: jetstream-facts 4) carries nothing but its subject,
 * so the plan says when the step is due and whether it is still pending, and the lead whether its
 * follow-ups stop; both are read together. Then it is delivered like any due follow-up (held until
 * due_at, the lead read again after a hold), and the marker acked once the result is stored.
 *
 * A lead has one timer at a time: before the marker of a step is acked, the timer of the plan's
 * next step is stored (contracts' nextTimedStep), in atomic batches with those of other markers.
 * A crash before the ack redelivers the marker and the write is made again, refused if it was
 * stored (expected last subject sequence 0: the subject holds the timer, or its marker).
 *
 * The marker is not deleted and the plan not written: the marker stays on the step's subject
 * until its own TTL (MARKER_TTL_MS), which is what refuses a timer republished for the step by a
 * redelivered lead.scored (expected last subject sequence 0), and what tells the lead view the
 * step fired. A marker delivered again after a crash before its result was stored is delivered
 * again, with the same webhook-id: delivery is at least once, and the receiver drops the
 * duplicate. One whose result was stored (only its ack was lost) is acked after one read.
 */
export async function handleMarker(held: HeldDue, control: DeliveryControl, deps: MarkerDeps): Promise<void> {
  const { msg } = held;
  const reason = msg.headers?.get(MARKER_REASON_HEADER);
  if (!reason) {
    held.ackNow();
    return;
  }
  if (reason !== "MaxAge") {
    // Only an expiry makes a follow-up due; other markers (not written by 2.15) are left alone.
    deps.logger.debug({ subject: msg.subject, reason }, "marker_ignored");
    held.ackNow();
    return;
  }
  let ref: StepRef;
  try {
    ref = parseFollowupSubject(msg.subject, "timer");
  } catch (err) {
    deps.metrics.invalidEvents.inc();
    deps.logger.error({ subject: msg.subject, err: (err as Error).message }, "invalid_marker_terminated");
    held.term(`not a timer subject: ${(err as Error).message}`.slice(0, 200));
    return;
  }
  const log = deps.logger.child({ tenant: ref.tenant, lead_id: ref.leadId, step: ref.step });

  // The lead is read now too, not only after a hold: in a burst markers come after due_at, and
  // then this read is the one at due time, a round trip saved per follow-up.
  // The lead's stop state is judged once the plan says which outcomes stop it (its stop_on).
  const [firstPlan, firstStopState] = await onBroker(
    () =>
      Promise.all([
        readPlan(deps.plans, ref),
        readStopState(deps.leads, ref, (error) => log.warn({ error }, "lead_unreadable_delivering_anyway")),
      ]),
    log,
    "marker_reads",
  );
  let plan = firstPlan;
  let fresh = true;
  // Held, not handed back: a nak would count a delivery, and deliveries are the attempts.
  const firstSeenMs = deps.now().getTime();
  while (!plan?.steps.some((s) => s.step === ref.step)) {
    if (deps.now().getTime() - firstSeenMs >= PLAN_MISSING_GRACE_MS) {
      log.error("marker_without_planned_step_discarded");
      deps.metrics.stopped.inc({ reason: "plan_missing" });
      held.ackNow();
      return;
    }
    log.warn("plan_not_readable_yet_retrying");
    if (!(await pause(PLAN_MISSING_RETRY_MS, control.stopSignal))) return release(held, deps, "shutdown");
    plan = await onBroker(() => readPlan(deps.plans, ref), log, "plan_read");
    fresh = false;
  }
  const stop: StopReason | null | undefined = fresh ? stopReasonOf(firstStopState, plan.stop_on) : undefined;
  const step = plan.steps.find((s) => s.step === ref.step)!;
  if (step.state !== "pending" || plan.cancelled) {
    // Cancelled by an outcome, or (`due`) fired through followup.due by an earlier version.
    log.debug({ state: step.state, cancelled: plan.cancelled !== undefined }, "marker_of_step_not_pending");
    held.ackNow();
    return;
  }
  const next = nextTimedStep(plan, ref.step);
  if (next !== null) await onBroker(() => storeTimer(deps, ref, next), log, "next_timer_publish");
  if (msg.info.deliveryCount > 1 && (await onBroker(() => settledBefore(deps, ref), log, "result_read"))) {
    // Its result was stored and only the marker's ack was lost (a crash, a broker restart):
    // one read on a redelivery saves a second call to the lead.
    log.info({ deliveries: msg.info.deliveryCount }, "marker_redelivered_result_stored_already");
    held.ackNow();
    return;
  }
  const firedAt = new Date(Math.floor(msg.info.timestampNanos / 1e6));
  return deliver(held, control, deps, {
    tenant: ref.tenant,
    due: dueOfMarker(ref, step, plan, deps.channel, firedAt),
    delivery: msg.info.deliveryCount,
    stop,
    ...(plan.stop_on !== undefined ? { stopOn: plan.stop_on } : {}),
    leadMissingUntilMs: Date.parse(step.due_at) + LEAD_MISSING_GRACE_MS,
  });
}

/** The timer of the lead's next step: stored once, whichever copy or redelivery writes it first. */
function storeTimer(deps: MarkerDeps, ref: StepRef, step: PlannedStep): Promise<void> {
  return deps.timers.publishMessage(timerParts(ref, step, deps.now(), SOURCE));
}

/**
 * The due follow-up a marker stands for: what the channels take, as followup.due carries it. The
 * step's channel and template are the plan's (a sequence's step); a plan made without sequences
 * names none, and its follow-ups go through `channel` (FOLLOWUP_CHANNEL), as before sequences.
 */
export function dueOfMarker(
  ref: StepRef,
  step: PlannedStep,
  plan: Pick<FollowupPlan, "lead_created_at" | "pred_prob" | "sequence">,
  channel: string,
  firedAt: Date,
): FollowupDueData {
  return {
    ...(step.template !== undefined ? { template: step.template } : {}),
    ...(plan.sequence !== undefined ? { sequence: plan.sequence.name } : {}),
    lead_id: ref.leadId,
    step: ref.step,
    delay_s: step.delay_s,
    due_at: step.due_at,
    idempotency_key: idempotencyKey(ref),
    channel: step.channel ?? channel,
    lead_created_at: plan.lead_created_at,
    pred_prob: plan.pred_prob,
    fired_at: firedAt.toISOString(),
    replays: 0,
    attempts_before: 0,
  };
}

/**
 * Whether the step's last result ended it (delivered, or dead: its dead letter is published
 * before the marker is acked, and a replay goes through the work queue). A result `error` means
 * a retry was due, which this delivery is.
 */
async function settledBefore(deps: MarkerDeps, ref: StepRef): Promise<boolean> {
  const last = await deps.readLastResult(subjects.followupResult(ref.tenant, ref.leadId, ref.step));
  if (last === null) return false;
  try {
    return decodeEvent("followup.result.v1", last).data.result !== "error";
  } catch {
    // Not a result this version can read: deliver, at least once.
    return false;
  }
}

/**
 * The lead's plan. One that breaks its contract is a defect an operator must look at: throwing
 * keeps the marker coming back (and logged) instead of acting on a plan that cannot be read.
 */
async function readPlan(plans: KvReader, ref: StepRef): Promise<FollowupPlan | null> {
  const entry = await plans.get(leadKey(ref));
  if (entry === null || entry.operation !== "PUT") return null;
  return decodePlan(entry.json());
}
