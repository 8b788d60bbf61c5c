import {
  encodeEvent,
  type FollowupPlan,
  followupMsgId,
  type LeadRef,
  type LeadScored,
  MARKER_TTL_MS,
  makeEvent,
  type PlannedStep,
  subjects,
  type Topology,
} from "@followup/contracts";
import { isWrongLastSequence } from "@followup/service-kit";
import type { JetStreamManager, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { decodeLeadEvent, type HandlerDeps } from "./handler.js";
import type { StoredPlan } from "./plans.js";
import { decideEligibility, type FollowupRule, planSteps, timerTtlSeconds } from "./schedule.js";

/** The `source` of every event the scheduler publishes. */
export const SOURCE = "/scheduler";

export type TimerDeps = HandlerDeps & { rule: FollowupRule };

/**
 * A scored lead: plan it once (KV create), publish one timer per pending step, then ack. The
 * create comes first and the plan is read only when it conflicts: a fresh lead (nearly every
 * lead.scored) costs one KV write and one publish per step.
 *
 * A redelivery (or a second copy, or a restart after a crash between the plan and its timers)
 * publishes the timers of the plan's pending steps again, and that is safe without any record of
 * which were stored: each is published with expect-last-subject-sequence 0, so the server
 * refuses it when its subject holds a message (the timer itself, or the marker of one that
 * expired), and never replaces or pushes back a timer. A pending step whose subject is empty was
 * never stored: a fired step's marker stays on its subject until the marker's TTL (the
 * dispatcher neither deletes it nor writes the plan), and a purge (an outcome) cancels the plan
 * first. So the missing ones, and only those, are stored; a step due longer ago than the marker
 * TTL is left alone, since its empty subject may be a marker that ran out.
 *
 * An outcome that cancels the plan while its timers are being published may leave a timer the
 * purge did not see; it fires into a cancelled plan and is settled without a follow-up.
 */
export async function handleScored(msg: JsMsg, deps: TimerDeps): Promise<void> {
  const event = decodeLeadEvent(msg, "lead.scored.v1");
  const ref: LeadRef = { tenant: event.tenant, leadId: event.data.lead_id };
  const log = deps.logger.child({ tenant: ref.tenant, lead_id: ref.leadId });
  const predProb = event.data.pred_prob;

  const plan = planLead(event, deps.rule, deps.now());
  const revision = await deps.plans.create(ref, plan);
  let stored: StoredPlan | null;
  if (revision !== null) {
    if (plan.skipped) {
      deps.metrics.skipped.inc({ reason: plan.skipped });
      log.debug({ pred_prob: predProb, reason: plan.skipped }, "followups_skipped");
      msg.ack();
      return;
    }
    stored = { plan, revision };
  } else {
    // Planned before: a redelivery, another copy, or an outcome that came first. Work from that plan.
    stored = await deps.plans.get(ref);
    if (stored === null) throw new Error("the lead's plan exists but could not be read");
  }
  await storeTimers(ref, stored.plan, predProb, deps, log);
  msg.ack();
}

/** The plan of a newly scored lead: its steps, or why it gets none. */
export function planLead(event: LeadScored, rule: FollowupRule, now: Date): FollowupPlan {
  const decision = decideEligibility(rule, event.data.pred_prob);
  return {
    lead_id: event.data.lead_id,
    tenant: event.tenant,
    lead_created_at: event.data.created_at,
    pred_prob: event.data.pred_prob,
    planned_at: now.toISOString(),
    steps: decision.eligible ? planSteps(new Date(event.data.created_at), rule.delays) : [],
    ...(decision.eligible ? {} : { skipped: decision.reason }),
  };
}

async function storeTimers(
  ref: LeadRef,
  plan: FollowupPlan,
  predProb: number,
  deps: TimerDeps,
  log: Logger,
): Promise<void> {
  const firedLongAgo = deps.now().getTime() - MARKER_TTL_MS;
  const pending = plan.steps.filter(
    (step) => step.state === "pending" && Date.parse(step.due_at) > firedLongAgo,
  );
  if (plan.cancelled || plan.skipped || pending.length === 0) {
    log.debug(
      { reason: plan.cancelled ? "cancelled" : (plan.skipped ?? "no_pending_step") },
      "lead_scored_again_nothing_to_schedule",
    );
    return;
  }
  const published = await Promise.all(pending.map((step) => publishTimer(ref, step, deps)));
  const existing = published.filter((p) => p === "existing").length;
  if (existing === pending.length) {
    log.debug({ reason: "timers_stored" }, "lead_scored_again_nothing_to_schedule");
    return;
  }
  // Some timers stored now: a first delivery, or a redelivery after a crash that stored only
  // some (those that exist were not counted by the copy that crashed before its ack).
  deps.metrics.scheduled.inc(pending.length);
  log.info(
    {
      pred_prob: predProb,
      count: pending.length,
      due_at: pending.map((step) => step.due_at),
      ...(existing > 0 ? { timers_already_stored: existing } : {}),
    },
    "followups_enqueued",
  );
}

/**
 * Publishes one step's timer unless its subject holds a message already (a timer, or the marker
 * of one that expired): the expected-last-subject-sequence 0 makes that check and the publish
 * one atomic step on the server. With one message per subject, publishing over an existing
 * timer would replace it and push it back.
 */
export async function publishTimer(
  ref: LeadRef,
  step: PlannedStep,
  deps: Pick<TimerDeps, "js" | "now">,
): Promise<"published" | "existing"> {
  const stepRef = { ...ref, step: step.step };
  const ttl = timerTtlSeconds(Date.parse(step.due_at), deps.now().getTime());
  const event = makeEvent("followup.timer.v1", {
    source: SOURCE,
    subject: `${ref.leadId}/${step.step}`,
    tenant: ref.tenant,
    data: { lead_id: ref.leadId, step: step.step, delay_s: step.delay_s, due_at: step.due_at, ttl_s: ttl },
  });
  try {
    const ack = await deps.js.publish(
      subjects.followupTimer(ref.tenant, ref.leadId, step.step),
      encodeEvent(event),
      { msgID: followupMsgId(stepRef), ttl: String(ttl), expect: { lastSubjectSequence: 0 } },
    );
    return ack.duplicate ? "existing" : "published";
  } catch (err) {
    if (isWrongLastSequence(err)) return "existing";
    throw err;
  }
}

/** Messages in FOLLOWUP_TIMERS: timers still running plus the markers of fired ones, until their TTL. */
export async function countPendingTimers(jsm: JetStreamManager, topology: Topology): Promise<number> {
  const info = await jsm.streams.info(topology.streams.timers.name);
  return info.state.messages;
}
