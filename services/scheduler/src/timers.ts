import {
  builtInSequence,
  chooseSequence,
  type FollowupPlan,
  type LeadRef,
  type LeadScored,
  leadKey,
  MARKER_TTL_MS,
  nextTimedStep,
  type PlannedStep,
  planExperiment,
  type SequenceDefinition,
  type StoredSequence,
  type Topology,
} from "@followup/contracts";
import {
  ATOMIC_BATCH_MAX,
  isAtomicBatchRejected,
  type Logger,
  logTogether,
  publishTimer as publishTimerMessage,
  type StagedBatch,
  stageAtomic,
  type TimerStored,
  timerMessage,
} from "@followup/service-kit";
import type { JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { isInvalidEvent } from "./consumer.js";
import { decodeLeadEvent, type HandlerDeps } from "./handler.js";
import { type FollowupRule, planSequenceSteps, planSteps } from "./schedule.js";
import type { SequenceCache } from "./sequences.js";

/** The `source` of every event the scheduler publishes. */
export const SOURCE = "/scheduler";

export type TimerDeps = HandlerDeps & {
  rule: FollowupRule;
  /** Every tenant's sequences; absent: no tenant has any (each gets the built-in one). */
  sequences?: SequenceCache;
  /**
   * The logger of the per-lead `followups_enqueued` line, service-kit's flatLineLogger of
   * `logger` (made once: the line is written for every lead); absent: `logger`.
   */
  enqueuedLogger?: Logger;
};

/** A decoded lead.scored and the plan made for it (not stored yet). */
interface ScoredLead {
  msg: JsMsg;
  ref: LeadRef;
  predProb: number;
  plan: FollowupPlan;
  /** What every log line about the lead carries (a child logger per lead costs more than the line). */
  fields: { tenant: string; lead_id: string };
}

function scoredLead(msg: JsMsg, deps: TimerDeps): ScoredLead {
  const event = decodeLeadEvent(msg, "lead.scored.v1");
  const ref: LeadRef = { tenant: event.tenant, leadId: event.data.lead_id };
  return {
    msg,
    ref,
    predProb: event.data.pred_prob,
    plan: planLead(event, deps.rule, deps.now(), deps.sequences?.of(ref.tenant)),
    fields: { tenant: ref.tenant, lead_id: ref.leadId },
  };
}

/**
 * A scored lead: plan it once (KV create), publish the timer of its first step, then ack. A
 * lead has one timer at a time: the dispatcher writes the next step's when a step's marker
 * fires (contracts' nextTimedStep), so scheduling costs one plan and one timer per lead however
 * many steps it has. The create comes first and the plan is read only when it conflicts: a
 * fresh lead (nearly every lead.scored) costs one KV write and one publish.
 *
 * A redelivery (or a second copy, or a restart after a crash between the plan and its timer)
 * publishes that timer again, and that is safe without any record of whether it was stored: it
 * is published with expect-last-subject-sequence 0, so the server refuses it when its subject
 * holds a message (the timer itself, or the marker of one that expired), and never replaces or
 * pushes back a timer. A step whose subject is empty never had a timer: a fired step's marker
 * stays on its subject until the marker's TTL (the dispatcher neither deletes it nor writes the
 * plan), and a purge (an outcome) cancels the plan first. A step due longer ago than the marker
 * TTL is left alone, since its empty subject may be a marker that ran out.
 *
 * An outcome that cancels the plan while its timers are being published may leave a timer the
 * purge did not see; it fires into a cancelled plan and is settled without a follow-up.
 */
export async function handleScored(msg: JsMsg, deps: TimerDeps): Promise<void> {
  await deps.sequences?.upToDate();
  await scheduleLead(scoredLead(msg, deps), deps);
  msg.ack();
}

/**
 * Scored leads in a batch (the scored consumer's, up to SCHEDULER_BATCH_SIZE): the new plans are
 * created as one atomic batch on the plans bucket, then the timers of their steps in atomic
 * batches of up to 1000, then every event is acked. At `sync_interval: always` a batch costs
 * a few fsyncs whatever its size, where a lead alone costs one per plan and one per timer.
 *
 * A batch is all or nothing, and the per-lead path (scheduleLead) is its fallback:
 * - a plan that exists already (a redelivery, another copy, an outcome that came first) makes
 *   the server refuse the plans' batch, and every lead of the batch goes the per-lead way, which
 *   reads an existing plan and repairs its missing timers;
 * - a timer subject that holds a message makes it refuse that timers' batch, whose timers are
 *   then published one by one (an existing one is left as it is).
 * A broker failure on the way acks nothing: the consumer loop runs the batch again (and at last
 * hands it back), and the plans then exist, so it goes the per-lead way. So each step's timer is
 * stored once whichever write a crash interrupts.
 */
export async function handleScoredBatch(
  msgs: JsMsg[],
  invalid: (msg: JsMsg, err: Error) => void,
  deps: TimerDeps,
): Promise<void> {
  // One read of the sequences bucket's last sequence per batch: every sequence stored before
  // these leads were pulled applies to them, in whichever copy pulled them (sequences.ts).
  await deps.sequences?.upToDate();
  const leads: ScoredLead[] = [];
  for (const msg of msgs) {
    try {
      leads.push(scoredLead(msg, deps));
    } catch (err) {
      if (!isInvalidEvent(err)) throw err;
      invalid(msg, err);
    }
  }
  // A lead scored twice in one batch would make the plans' batch refuse itself: the repeats go
  // the per-lead way once the first one's plan is stored.
  const seen = new Set<string>();
  const firsts: ScoredLead[] = [];
  const repeats: ScoredLead[] = [];
  for (const lead of leads) {
    const key = leadKey(lead.ref);
    (seen.has(key) ? repeats : firsts).push(lead);
    seen.add(key);
  }
  if (firsts.length > 1) await scheduleNewLeads(firsts, deps);
  else await Promise.all(firsts.map((lead) => scheduleLead(lead, deps)));
  await Promise.all(repeats.map((lead) => scheduleLead(lead, deps)));
  for (const lead of leads) lead.msg.ack();
}

/**
 * Leads of a batch, each once: their plans in one atomic batch and their timers in others. The
 * plans are sent first, then the timers while the plans commit, and the timers are committed
 * only once the plans are stored, so a timer never fires without its plan and only the timers'
 * commit waits for the plans' fsyncs. When the plans' batch is refused (a plan exists: a
 * redelivery, another copy), the timers' batches are abandoned unstored and every lead goes
 * the per-lead way; when it fails (a timeout), they are abandoned and the failure is thrown.
 */
async function scheduleNewLeads(leads: ScoredLead[], deps: TimerDeps): Promise<void> {
  const plansStored = createPlans(leads, deps);
  const planned: { lead: ScoredLead; steps: PlannedStep[] }[] = [];
  const skippedLeads: ScoredLead[] = [];
  const untimed: ScoredLead[] = [];
  for (const lead of leads) {
    if (lead.plan.skipped || lead.plan.holdout) skippedLeads.push(lead);
    else {
      const steps = timedSteps(lead.plan, deps);
      if (steps === null) untimed.push(lead);
      else planned.push({ lead, steps });
    }
  }
  const timers = stageTimerBatches(planned, deps);
  const abandonTimers = () => Promise.all(timers.map(({ staged }) => staged.abandon()));
  let stored: boolean;
  try {
    stored = await plansStored;
  } catch (err) {
    await abandonTimers();
    throw err;
  }
  if (!stored) {
    await abandonTimers();
    await Promise.all(leads.map((lead) => scheduleLead(lead, deps)));
    return;
  }
  for (const lead of skippedLeads) skipped(lead, deps);
  // No step left to time (every one due longer ago than the marker TTL): nothing to store.
  for (const lead of untimed) nothingToSchedule(lead, lead.plan, deps);
  await commitTimerBatches(planned, timers, deps);
}

/** Creates the leads' plans as one atomic batch; false when the bucket refused it (some plan exists). */
async function createPlans(leads: ScoredLead[], deps: TimerDeps): Promise<boolean> {
  try {
    await deps.plans.createAll(leads.map(({ ref, plan }) => ({ ref, plan })));
    return true;
  } catch (err) {
    if (!isAtomicBatchRejected(err)) throw err;
    deps.logger.debug({ leads: leads.length, code: err.code }, "plans_batch_rejected_lead_by_lead");
    return false;
  }
}

/** The per-lead path: create the plan, or work from the one that exists; then its missing timers. */
async function scheduleLead(lead: ScoredLead, deps: TimerDeps): Promise<void> {
  const revision = await deps.plans.create(lead.ref, lead.plan);
  let plan: FollowupPlan;
  if (revision !== null) {
    if (lead.plan.skipped || lead.plan.holdout) {
      skipped(lead, deps);
      return;
    }
    plan = lead.plan;
  } else {
    // Planned before: a redelivery, another copy, or an outcome that came first. Work from that plan.
    const stored = await deps.plans.get(lead.ref);
    if (stored === null) throw new Error("the lead's plan exists but could not be read");
    plan = stored.plan;
  }
  const steps = pendingSteps(lead, plan, deps);
  if (steps === null) return;
  countScheduled(lead, steps, await publishTimer(lead.ref, timedStep(steps), deps), deps);
}

function skipped(lead: ScoredLead, deps: TimerDeps): void {
  const reason = lead.plan.skipped ?? "holdout";
  deps.metrics.skipped.inc({ reason });
  deps.logger.debug({ ...lead.fields, pred_prob: lead.predProb, reason }, "followups_skipped");
}

/**
 * The built-in sequence's steps go through the dispatcher's FOLLOWUP_CHANNEL: its plans record no
 * sequence, channel, template or stop_on, exactly as plans were made before sequences.
 */
const DEPLOYMENT_CHANNEL = "FOLLOWUP_CHANNEL";

/** The built-in sequence of each rule (rules are read-only), made once per rule instead of once per lead. */
const builtInSequences = new WeakMap<FollowupRule, SequenceDefinition>();

function builtInSequenceOf(rule: FollowupRule): SequenceDefinition {
  let sequence = builtInSequences.get(rule);
  if (sequence === undefined) {
    sequence = builtInSequence({
      FOLLOWUP_ENABLED: rule.enabled,
      FOLLOWUP_RULE_TOP_P: rule.topP,
      FOLLOWUP_SCHEDULES: rule.delays,
      FOLLOWUP_CHANNEL: DEPLOYMENT_CHANNEL,
    });
    builtInSequences.set(rule, sequence);
  }
  return sequence;
}

/**
 * The plan of a newly scored lead: the sequence chooseSequence picks among the tenant's (the
 * built-in one when it has none), its steps from the lead's creation in the lead's zones, or why
 * it gets none. The built-in sequence keeps the plans of before sequences exactly.
 */
export function planLead(
  event: LeadScored,
  rule: FollowupRule,
  now: Date,
  tenantSequences: readonly StoredSequence[] = [],
): FollowupPlan {
  const base = {
    lead_id: event.data.lead_id,
    tenant: event.tenant,
    lead_created_at: event.data.created_at,
    pred_prob: event.data.pred_prob,
    planned_at: now.toISOString(),
  };
  const builtIn = builtInSequenceOf(rule);
  const enrolment = chooseSequence(tenantSequences, builtIn, event.data);
  if ("skipped" in enrolment) return { ...base, steps: [], skipped: enrolment.skipped };
  if (enrolment.sequence === builtIn) {
    // Exactly the plan of before sequences (planSteps' arithmetic, no sequence recorded), so a
    // tenant without sequences sees nothing change, in its plans or its lead views.
    return { ...base, steps: planSteps(new Date(event.data.created_at), rule.delays) };
  }
  const sequence = enrolment.sequence as StoredSequence;
  const recorded = {
    sequence: { name: sequence.name, revision: sequence.revision },
    stop_on: [...sequence.stop_on],
  };
  // Variants and the holdout are decided from tenant, sequence and lead (a hash): a redelivery
  // or another copy decides the same. A lead held out is enrolled and sent nothing.
  const experiment = planExperiment(event.tenant, sequence, event.data.lead_id);
  if (experiment.holdout) return { ...base, steps: [], ...recorded, holdout: true };
  const { steps } = planSequenceSteps(sequence, new Date(event.data.created_at), event.data, {
    experiment: experiment.steps,
  });
  return { ...base, steps, ...recorded };
}

/**
 * A plan's steps that get timers now, or null when none does: a step stays pending in the plan
 * after it fired (the dispatcher does not write the plan), and its marker keeps its subject taken
 * for MARKER_TTL_MS, after which a timer published again would fire a second time: so a step due
 * longer ago than that is not scheduled again.
 */
function timedSteps(plan: FollowupPlan, deps: Pick<TimerDeps, "now">): PlannedStep[] | null {
  const firedLongAgo = deps.now().getTime() - MARKER_TTL_MS;
  const pending = plan.steps.filter(
    (step) => step.state === "pending" && Date.parse(step.due_at) > firedLongAgo,
  );
  return plan.cancelled || plan.skipped || pending.length === 0 ? null : pending;
}

/** timedSteps, with the line that says why a lead gets no timer. */
function pendingSteps(lead: ScoredLead, plan: FollowupPlan, deps: TimerDeps): PlannedStep[] | null {
  const pending = timedSteps(plan, deps);
  if (pending === null) nothingToSchedule(lead, plan, deps);
  return pending;
}

function nothingToSchedule(lead: ScoredLead, plan: FollowupPlan, deps: TimerDeps): void {
  deps.logger.debug(
    { ...lead.fields, reason: plan.cancelled ? "cancelled" : (plan.skipped ?? "no_pending_step") },
    "lead_scored_again_nothing_to_schedule",
  );
}

/** Of a lead's pending steps (pendingSteps: never empty), the one that gets a timer now: the first. */
function timedStep(pending: PlannedStep[]): PlannedStep {
  const first = nextTimedStep({ steps: pending }, 0);
  if (first === null) throw new Error("a lead with no pending step has no timer to store");
  return first;
}

function countScheduled(
  lead: ScoredLead,
  pending: PlannedStep[],
  stored: TimerStored,
  deps: TimerDeps,
): void {
  if (stored === "existing") {
    deps.logger.debug({ ...lead.fields, reason: "timers_stored" }, "lead_scored_again_nothing_to_schedule");
    return;
  }
  // The lead's timer stored now: a first delivery, or a redelivery after a crash between the
  // plan and its timer (whose steps the copy that crashed before its ack did not count).
  deps.metrics.scheduled.inc(pending.length);
  (deps.enqueuedLogger ?? deps.logger).info(
    {
      tenant: lead.fields.tenant,
      lead_id: lead.fields.lead_id,
      pred_prob: lead.predProb,
      count: pending.length,
      due_at: pending.map((step) => step.due_at),
    },
    "followups_enqueued",
  );
}

type TimedLead = { lead: ScoredLead; step: PlannedStep };

/**
 * The leads' timers (one each: its first step's) in atomic batches of up to ATOMIC_BATCH_MAX,
 * sent but not committed (at once: the server takes 50 batches in flight per stream).
 */
function stageTimerBatches(
  planned: { lead: ScoredLead; steps: PlannedStep[] }[],
  deps: TimerDeps,
): { chunk: TimedLead[]; staged: StagedBatch }[] {
  const timers = planned.map(({ lead, steps }) => ({ lead, step: timedStep(steps) }));
  const batches: { chunk: TimedLead[]; staged: StagedBatch }[] = [];
  for (let i = 0; i < timers.length; i += ATOMIC_BATCH_MAX) {
    const chunk = timers.slice(i, i + ATOMIC_BATCH_MAX);
    const messages = chunk.map(({ lead, step }) => timerMessage(lead.ref, step, deps.now(), SOURCE));
    batches.push({ chunk, staged: stageAtomic(deps.js, messages) });
  }
  return batches;
}

/**
 * Commits the staged timer batches. A batch the stream refuses (a subject that holds a timer or
 * a marker) is published one timer at a time instead, which leaves an existing timer as it is.
 */
async function commitTimerBatches(
  planned: { lead: ScoredLead; steps: PlannedStep[] }[],
  batches: { chunk: TimedLead[]; staged: StagedBatch }[],
  deps: TimerDeps,
): Promise<void> {
  const results = new Map<ScoredLead, TimerStored>();
  await Promise.all(
    batches.map(async ({ chunk, staged }) => {
      try {
        await staged.commit();
        for (const timer of chunk) results.set(timer.lead, "published");
      } catch (err) {
        if (!isAtomicBatchRejected(err)) throw err;
        deps.logger.debug({ timers: chunk.length, code: err.code }, "timers_batch_rejected_one_by_one");
        await Promise.all(
          chunk.map(async (timer) =>
            results.set(timer.lead, await publishTimer(timer.lead.ref, timer.step, deps)),
          ),
        );
      }
    }),
  );
  // A line per lead, written as one write for the batch (a syscall each cost more than the line).
  logTogether(deps.logger, () => {
    for (const { lead, steps } of planned) countScheduled(lead, steps, results.get(lead)!, deps);
  });
}

/** Publishes one step's timer unless its subject holds a message (service-kit's publishTimer). */
export function publishTimer(
  ref: LeadRef,
  step: PlannedStep,
  deps: Pick<TimerDeps, "js" | "now">,
): Promise<TimerStored> {
  return publishTimerMessage(deps.js, timerMessage(ref, step, deps.now(), SOURCE));
}

/** Messages in FOLLOWUP_TIMERS: timers still running plus the markers of fired ones, until their TTL. */
export async function countPendingTimers(jsm: JetStreamManager, topology: Topology): Promise<number> {
  const info = await jsm.streams.info(topology.streams.timers.name);
  return info.state.messages;
}
