import {
  enrolledIn,
  type FollowupPlan,
  type LeadEnrolled,
  type LeadRef,
  MARKER_TTL_MS,
  MAX_STEP,
  nextTimedStep,
  type PlannedStep,
  parseSubject,
  planExperiment,
  STOPPING_OUTCOMES,
  type StoredSequence,
} from "@followup/contracts";
import type { JsMsg } from "@nats-io/jetstream";
import { handleUnenrolled } from "./cancel.js";
import { InvalidEvent } from "./consumer.js";
import { decodeLeadEvent, type HandlerDeps } from "./handler.js";
import { planSequenceSteps, type SequenceRef } from "./schedule.js";
import type { SequenceCache } from "./sequences.js";
import { publishTimer } from "./timers.js";

export type EnrolDeps = HandlerDeps & { sequences: SequenceCache };

/**
 * The `scheduler-enrolments` durable: enrolments and unenrolments by hand, one at a time in stream
 * order (max_ack_pending 1), so an unenrolment never overtakes the enrolment asked for before it.
 */
export async function handleEnrolment(msg: JsMsg, deps: EnrolDeps): Promise<void> {
  const { kind } = parseSubject(msg.subject);
  if (kind === "enrolled") await handleEnrolled(decodeLeadEvent(msg, "lead.enrolled.v1"), deps);
  else if (kind === "unenrolled") await handleUnenrolled(decodeLeadEvent(msg, "lead.unenrolled.v1"), deps);
  else throw new InvalidEvent(`not an enrolment subject: ${msg.subject}`);
  msg.ack();
}

/**
 * The plan with the sequence's steps appended, numbered after the existing ones (so timer
 * subjects stay `<tenant>.<leadId>.<step>`), due from the enrolment; null when nothing changes:
 * enrolled already, stopped by an outcome (only an unenrolment's cancellation is lifted), or no
 * room left below MAX_STEP. The plan's stop_on is the union of the sequences whose steps are
 * still pending: an outcome that stops one of them stops the lead's follow-ups.
 */
export function enrolPlan(
  plan: FollowupPlan,
  sequence: StoredSequence,
  event: LeadEnrolled,
  nowMs: number,
): FollowupPlan | null {
  if (enrolledIn(plan, sequence.name)) return null;
  if (plan.cancelled && plan.cancelled.reason !== "unenrolled") return null;
  const firstStep = Math.max(0, ...plan.steps.map((s) => s.step)) + 1;
  const ref: SequenceRef = { name: sequence.name, revision: sequence.revision };
  // A salesperson's choice: the variants apply, the holdout does not (the lead is to be followed up).
  const { steps } = planSequenceSteps(sequence, new Date(event.data.requested_at), event.data, {
    firstStep,
    sequence: ref,
    experiment: planExperiment(event.tenant, sequence, event.data.lead_id).steps,
  });
  if (firstStep + steps.length - 1 > MAX_STEP) return null;
  const stillPending = plan.steps.some((s) => s.state === "pending" && Date.parse(s.due_at) > nowMs);
  const stopOn = new Set([...(stillPending ? (plan.stop_on ?? STOPPING_OUTCOMES) : []), ...sequence.stop_on]);
  const { cancelled: _lifted, skipped: _enrolledNow, ...rest } = plan;
  return { ...rest, steps: [...plan.steps, ...steps], stop_on: [...stopOn] };
}

/**
 * POST /v1/lead/:id/enroll: the sequence's steps join the lead's plan (a plan made here when the
 * scheduler has not planned the lead yet; its lead.scored then finds it and adds nothing), then
 * their timers are published. A redelivery finds the steps in the plan and publishes only the
 * timers that are missing (expected last subject sequence 0), so it adds nothing twice.
 */
async function handleEnrolled(event: LeadEnrolled, deps: EnrolDeps): Promise<void> {
  const ref: LeadRef = { tenant: event.tenant, leadId: event.data.lead_id };
  const log = deps.logger.child({ tenant: ref.tenant, lead_id: ref.leadId, sequence: event.data.sequence });
  await deps.sequences.upToDate();
  const sequence = deps.sequences.get(ref.tenant, event.data.sequence);
  if (sequence === null) {
    // Deleted between the request (which found it) and now: nothing to enrol in.
    log.warn("enrolment_sequence_gone");
    return;
  }
  const nowMs = deps.now().getTime();
  const fresh: FollowupPlan = {
    lead_id: ref.leadId,
    tenant: ref.tenant,
    lead_created_at: event.data.lead_created_at,
    pred_prob: event.data.pred_prob,
    planned_at: deps.now().toISOString(),
    steps: [],
  };
  let plan: FollowupPlan | null = null;
  const created = enrolPlan(fresh, sequence, event, nowMs);
  if (created !== null && (await deps.plans.create(ref, created)) !== null) plan = created;
  else {
    const updated = await deps.plans.update(ref, (current) => enrolPlan(current, sequence, event, nowMs));
    if (updated === null) throw new Error("the lead's plan exists but could not be read");
    plan = updated.plan;
  }
  if (!enrolledIn(plan, sequence.name)) {
    log.warn({ cancelled: plan.cancelled?.reason }, "enrolment_refused_followups_stopped");
    return;
  }
  const firedLongAgo = nowMs - MARKER_TTL_MS;
  const steps = plan.steps.filter(
    (s: PlannedStep) =>
      (s.sequence?.name ?? plan.sequence?.name) === sequence.name &&
      s.state === "pending" &&
      Date.parse(s.due_at) > firedLongAgo,
  );
  // One timer per lead at a time: the first step of the enrolment's gets one now, the dispatcher
  // stores each next one when the one before fires (contracts' nextTimedStep).
  const first = nextTimedStep({ steps }, 0);
  const stored = first === null ? "existing" : await publishTimer(ref, first, deps);
  const published = stored === "published" ? 1 : 0;
  if (published > 0) deps.metrics.scheduled.inc(steps.length);
  log.info(
    { steps: steps.map((s) => s.step), due_at: steps.map((s) => s.due_at), timers_published: published },
    "followups_enrolled",
  );
}
