import {
  type FollowupPlan,
  type LeadOutcome,
  type LeadRef,
  type LeadUnenrolled,
  type PlannedStep,
  stopsFollowups,
  subjects,
  type Topology,
} from "@followup/contracts";
import { readLead } from "@followup/service-kit";
import type { JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { decodeLeadEvent, type HandlerDeps } from "./handler.js";

export type CancelDeps = HandlerDeps;

/**
 * A stopping outcome: one of the plan's stop_on (its sequences' stopping outcomes; booked,
 * unqualified and spam when it names none), so every outcome is looked at against the plan. The
 * plan is marked cancelled first, then the lead's timers (and the markers of fired ones) and
 * queued due messages (replays) are purged. A purge leaves no marker, so a purged timer never
 * fires; a timer published after the purge (a race with lead.scored) still finds the plan
 * cancelled when its marker comes. A lead not planned yet gets a cancelled plan when the outcome
 * stops by default (the event's stops_followups), so a late lead.scored schedules nothing.
 * Redelivery repeats the purges, which is harmless.
 */
export async function handleOutcome(msg: JsMsg, deps: CancelDeps): Promise<void> {
  const event = decodeLeadEvent(msg, "lead.outcome.v1");
  const ref: LeadRef = { tenant: event.tenant, leadId: event.data.lead_id };
  const log = deps.logger.child({ tenant: ref.tenant, lead_id: ref.leadId });
  const stored = await deps.plans.get(ref);
  const stops =
    stored === null ? event.data.stops_followups : stopsFollowups(event.data.outcome, stored.plan.stop_on);
  if (!stops) {
    if (stored?.plan.stop_on !== undefined)
      log.debug({ outcome: event.data.outcome }, "outcome_not_in_stop_on");
    msg.ack();
    return;
  }
  const cancelled = { at: deps.now().toISOString(), reason: `outcome:${event.data.outcome}` };
  if (stored === null) {
    const created = await deps.plans.create(ref, await stoppedPlan(event, cancelled, deps));
    if (created !== null) {
      deps.metrics.skipped.inc({ reason: "stopped" });
      log.debug({ outcome: event.data.outcome, reason: "stopped" }, "followups_skipped");
    }
  }
  const { stepsCancelled, planned } = await cancelPending(ref, cancelled, deps);
  if (!planned) throw new Error("the lead's plan could not be read back after creating it");
  const purged = await purgeLead(deps.jsm, deps.topology, ref);
  if (purged.due > 0) deps.metrics.cancelled.inc({ stage: "queued" }, purged.due);
  log.info(
    {
      outcome: event.data.outcome,
      pending_cancelled: stepsCancelled,
      timers_purged: purged.timers,
      due_purged: purged.due,
    },
    "followups_cancelled",
  );
  msg.ack();
}

/**
 * POST /v1/lead/:id/unenroll: the plan's steps not fired yet are cancelled, as by a stopping
 * outcome, and the plan records `unenrolled`. Nothing is purged: a fired step's marker must stay
 * on its subject (it refuses a timer republished by a redelivered lead.scored, and a later
 * enrolment clears an `unenrolled` cancellation), so a cancelled step's timer runs out into a
 * cancelled step, which the dispatcher acks without a send. A lead without a plan has nothing
 * pending.
 */
export async function handleUnenrolled(event: LeadUnenrolled, deps: CancelDeps): Promise<void> {
  const ref: LeadRef = { tenant: event.tenant, leadId: event.data.lead_id };
  const log = deps.logger.child({ tenant: ref.tenant, lead_id: ref.leadId });
  const cancelled = { at: event.data.requested_at, reason: "unenrolled" };
  const { stepsCancelled, planned } = await cancelPending(ref, cancelled, deps);
  log.info({ pending_cancelled: stepsCancelled, planned }, "followups_unenrolled");
}

/** Cancels the plan's steps not fired yet (compare-and-set) and counts them; `planned`: it had a plan. */
async function cancelPending(
  ref: LeadRef,
  cancelled: { at: string; reason: string },
  deps: CancelDeps,
): Promise<{ stepsCancelled: number; planned: boolean }> {
  const nowMs = deps.now().getTime();
  let stepsCancelled = 0;
  const updated = await deps.plans.update(ref, (plan) => {
    const pending = plan.steps.filter((step) => notFiredYet(step, nowMs)).length;
    if (plan.cancelled && pending === 0) return null;
    stepsCancelled = pending;
    return cancelPlan(plan, cancelled, nowMs);
  });
  if (stepsCancelled > 0) deps.metrics.cancelled.inc({ stage: "pending" }, stepsCancelled);
  return { stepsCancelled, planned: updated !== null };
}

/**
 * A step still waiting for its timer. The firing path does not write the plan, so a step whose
 * due_at has passed stays `pending` once it fired: what became of it is the dispatcher's (its
 * result, or the outcome stopping it at its next attempt), not a cancellation of a pending step.
 */
function notFiredYet(step: PlannedStep, nowMs: number): boolean {
  return step.state === "pending" && Date.parse(step.due_at) > nowMs;
}

/**
 * The plan with every step that has not fired yet cancelled and the cancellation recorded (the
 * first one wins); the plan's `cancelled` stops the others wherever they are.
 */
export function cancelPlan(
  plan: FollowupPlan,
  cancelled: { at: string; reason: string },
  nowMs: number,
): FollowupPlan {
  return {
    ...plan,
    steps: plan.steps.map((step) => (notFiredYet(step, nowMs) ? { ...step, state: "cancelled" } : step)),
    cancelled: plan.cancelled ?? cancelled,
  };
}

/** Purges every timer (and unhandled marker) of a lead. */
export async function purgeTimers(jsm: JetStreamManager, topology: Topology, ref: LeadRef): Promise<number> {
  const filter = subjects.followupsOfLead("timer", ref.tenant, ref.leadId);
  return (await jsm.streams.purge(topology.streams.timers.name, { filter })).purged;
}

async function purgeLead(
  jsm: JetStreamManager,
  topology: Topology,
  ref: LeadRef,
): Promise<{ timers: number; due: number }> {
  const dueFilter = subjects.followupsOfLead("due", ref.tenant, ref.leadId);
  const [timers, due] = await Promise.all([
    purgeTimers(jsm, topology, ref),
    jsm.streams.purge(topology.streams.followups.name, { filter: dueFilter }).then((r) => r.purged),
  ]);
  return { timers, due };
}

/** The plan of a lead stopped before it was planned: no steps, and why. */
async function stoppedPlan(
  event: LeadOutcome,
  cancelled: { at: string; reason: string },
  deps: Pick<CancelDeps, "leads">,
): Promise<FollowupPlan> {
  const read = await readLead(deps.leads, { tenant: event.tenant, leadId: event.data.lead_id });
  const lead = read.status === "found" ? read.lead : null;
  return {
    lead_id: event.data.lead_id,
    tenant: event.tenant,
    // The outcome event carries neither; without a readable stored lead these are placeholders.
    lead_created_at: lead?.created_at ?? event.data.recorded_at,
    pred_prob: lead?.pred_prob ?? 0,
    planned_at: cancelled.at,
    steps: [],
    skipped: "stopped",
    cancelled,
  };
}
