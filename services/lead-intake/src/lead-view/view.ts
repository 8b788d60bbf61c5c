import {
  type FollowupDead,
  type FollowupPlan,
  type FollowupReplayed,
  type FollowupResult,
  type FollowupStatus,
  type HookReceipt,
  isProviderReport,
  type LeadFollowup,
  type LeadOutcome,
  type LeadScored,
  type LeadView,
  type PlannedStep,
  type StoredLead,
  stopReason,
  stopsFollowups,
  strategyName,
  type TimelineEntry,
} from "@followup/contracts";

/**
 * The read model of GET /v1/lead/:id, pure: what the lead, the scheduler's plan and the events
 * of the streams say, merged into follow-up statuses and one timeline. source.ts
 * reads the inputs from JetStream.
 */

export interface LeadSources {
  lead: StoredLead;
  /** The scheduler's plan; null until the scheduler has seen the lead. */
  plan: FollowupPlan | null;
  /** The lead's events on LEADS (lead.scored, lead.outcome). */
  leadEvents: (LeadScored | LeadOutcome)[];
  /** Every delivery attempt's result on FOLLOWUP_RESULTS. */
  results: FollowupResult[];
  /** Dead letters still in FOLLOWUP_DLQ (a replayed one is gone). */
  deadLetters: FollowupDead[];
  /** Each replay of a dead letter (followup.replayed on FOLLOWUP_RESULTS). */
  replays: FollowupReplayed[];
  /** Follow-ups received by lead-intake's own hook. */
  receipts: HookReceipt[];
  /**
   * Expiry markers on the lead's timer subjects, by step, with when they were stored: a marker
   * says its step fired (the dispatcher does not write the plan when it delivers one).
   */
  markers: { step: number; at: string }[];
  /**
   * The lead's channels whose address the tenant suppressed (an inbound STOP, an unsubscribe, a
   * 21610): its pending steps on them will send nothing, so the view shows them suppressed now.
   */
  suppressedChannels?: ReadonlySet<string>;
}

/** Whether follow-ups of the lead were stopped: a stopping outcome, a cancellation, a cancelled plan. */
export function followupsStopped(lead: StoredLead, plan: FollowupPlan | null): boolean {
  return stopReason(lead, plan?.stop_on) !== null || plan?.cancelled !== undefined;
}

/**
 * One step's status. A step delivered (an attempt succeeded) is delivered, whatever came after;
 * one whose recipient was suppressed at delivery is suppressed (nothing was sent, nothing will be).
 * Otherwise it is cancelled when the plan cancelled it or the lead's follow-ups stopped, pending
 * while the plan says so and nothing says it fired (a marker on its timer subject, an attempt, a
 * dead letter), failed while a dead letter of it waits, else due (in delivery or being retried).
 * The plan's `due` is what earlier versions wrote when they fired a step.
 */
export function followupStatus(
  state: PlannedStep["state"],
  evidence: { fired?: boolean; delivered: boolean; dead: boolean; stopped: boolean; suppressed?: boolean },
): FollowupStatus {
  if (evidence.delivered) return "delivered";
  if (evidence.suppressed) return "suppressed";
  if (state === "cancelled" || evidence.stopped) return "cancelled";
  if (state === "pending" && !evidence.fired && !evidence.dead) return "pending";
  if (evidence.dead) return "failed";
  return "due";
}

/**
 * When each step became due, for those that did: when its marker was stored but not before
 * due_at (the marker comes up to a second early and is held), due_at for a step whose marker is
 * gone (purged by an outcome, or past its TTL) but whose attempts show it fired, and what the
 * plan says for a step an earlier version fired.
 */
function dueTimes(sources: LeadSources): Map<number, string> {
  const times = new Map<number, string>();
  const dueAt = new Map((sources.plan?.steps ?? []).map((s) => [s.step, s.due_at]));
  for (const step of sources.plan?.steps ?? []) {
    if (step.state === "due") times.set(step.step, step.due_published_at ?? step.due_at);
  }
  for (const marker of sources.markers) {
    const due = dueAt.get(marker.step);
    if (due === undefined || times.has(marker.step)) continue;
    times.set(marker.step, Date.parse(marker.at) > Date.parse(due) ? marker.at : due);
  }
  for (const fired of [...sources.results, ...sources.deadLetters]) {
    const due = dueAt.get(fired.data.step);
    if (due !== undefined && !times.has(fired.data.step)) times.set(fired.data.step, due);
  }
  return times;
}

function byTime<T extends { time: string }>(a: T, b: T): number {
  return Date.parse(a.time) - Date.parse(b.time);
}

function followupOf(
  step: PlannedStep,
  sources: LeadSources,
  stopped: boolean,
  due: Map<number, string>,
): LeadFollowup {
  const ofStep = sources.results.filter((r) => r.data.step === step.step).sort(byTime);
  // A provider's report (Twilio's status callback) is about an attempt's message, not an attempt.
  const results = ofStep.filter((r) => !isProviderReport(r.data.result));
  const report = ofStep.filter((r) => isProviderReport(r.data.result)).at(-1);
  const delivered = results.find((r) => r.data.result === "ok");
  // Suppressed at delivery, or pending on a channel whose address is suppressed now (the
  // dispatcher checks it before every send, so nothing will go).
  const pendingOnSuppressed =
    step.state === "pending" &&
    !due.has(step.step) &&
    step.channel !== undefined &&
    (sources.suppressedChannels?.has(step.channel) ?? false);
  const suppressed = pendingOnSuppressed || results.some((r) => r.data.result === "suppressed");
  const dead = sources.deadLetters.filter((d) => d.data.step === step.step).sort(byTime);
  const lastDead = dead.at(-1);
  const last = results.at(-1);
  const status = followupStatus(step.state, {
    fired: due.has(step.step),
    delivered: delivered !== undefined,
    dead: lastDead !== undefined,
    stopped,
    suppressed,
  });
  const lastError = last?.data.error ?? (last?.data.result === "ok" ? undefined : lastDead?.data.last_error);
  return {
    step: step.step,
    delay_s: step.delay_s,
    strategy: strategyName(step.delay_s),
    due_at: step.due_at,
    status,
    attempts: Math.max(results.length, lastDead?.data.attempts ?? 0),
    ...(last
      ? { last_status_code: last.data.status_code }
      : lastDead
        ? { last_status_code: lastDead.data.last_status_code }
        : {}),
    ...(lastError !== undefined ? { last_error: lastError } : {}),
    ...(delivered ? { delivered_at: delivered.time } : {}),
    ...(report ? { provider_status: report.data.result as "delivered" | "undelivered" | "failed" } : {}),
    ...stepOrigin(step, sources.plan),
  };
}

/** Where a step came from and how it goes out, as far as its plan records it (older plans: nothing). */
function stepOrigin(step: PlannedStep, plan: FollowupPlan | null): Partial<LeadFollowup> {
  const sequence = step.sequence?.name ?? plan?.sequence?.name;
  return {
    ...(sequence !== undefined ? { sequence } : {}),
    ...(step.channel !== undefined ? { channel: step.channel } : {}),
    ...(step.template !== undefined ? { template: step.template } : {}),
    ...(step.variant !== undefined ? { variant: step.variant } : {}),
    ...(step.moved_from !== undefined ? { moved_from: step.moved_from } : {}),
    ...(step.timezone_assumed !== undefined ? { timezone_assumed: step.timezone_assumed } : {}),
  };
}

/** The order of entries that happened at the same instant: the order things happen in. */
const EVENT_ORDER = [
  "scored",
  "scheduled",
  "outcome",
  "due",
  "attempt_ok",
  "attempt_error",
  "dead",
  "suppressed",
  "provider_report",
  "replayed",
  "hook_received",
  "cancelled",
] as const;
type TimelineEvent = (typeof EVENT_ORDER)[number];

function entry(
  at: string,
  event: TimelineEvent,
  detail: Record<string, unknown>,
  step?: number,
): TimelineEntry {
  return { at, event, ...(step !== undefined ? { step } : {}), detail };
}

function scoredEntry(lead: StoredLead, events: LeadSources["leadEvents"]): TimelineEntry {
  const scored = events.find((e): e is LeadScored => e.type === "lead.scored.v1");
  const { intent, sentiment, urgency, score } = lead.enrichment;
  return entry(scored?.time ?? lead.created_at, "scored", {
    pred_prob: lead.pred_prob,
    score,
    intent,
    sentiment,
    urgency,
    model_version: lead.model_version,
  });
}

function outcomeEntries(lead: StoredLead, events: LeadSources["leadEvents"]): TimelineEntry[] {
  const outcomes = events.filter((e): e is LeadOutcome => e.type === "lead.outcome.v1");
  const recorded = outcomes.map((e) => e.data);
  // An outcome on the lead whose event is not (yet) on the stream still belongs on the timeline.
  if (lead.outcome && !recorded.some((o) => o.recorded_at === lead.outcome?.recorded_at)) {
    recorded.push({
      lead_id: lead.lead_id,
      ...lead.outcome,
      stops_followups: stopsFollowups(lead.outcome.outcome),
    });
  }
  return recorded.map((o) =>
    entry(o.recorded_at, "outcome", {
      outcome: o.outcome,
      stops_followups: o.stops_followups,
      ...(o.notes !== undefined ? { notes: o.notes } : {}),
    }),
  );
}

function planEntries(plan: FollowupPlan | null, lead: StoredLead, due: Map<number, string>): TimelineEntry[] {
  const entries: TimelineEntry[] = [];
  if (plan) {
    entries.push(
      entry(plan.planned_at, "scheduled", {
        steps: plan.steps.length,
        ...(plan.skipped ? { skipped: plan.skipped } : {}),
      }),
    );
    for (const step of plan.steps) {
      const at = due.get(step.step);
      if (at === undefined) continue;
      entries.push(entry(at, "due", { due_at: step.due_at, delay_s: step.delay_s }, step.step));
    }
  }
  if (plan?.cancelled) entries.push(entry(plan.cancelled.at, "cancelled", { reason: plan.cancelled.reason }));
  else if (lead.cancelled_at) entries.push(entry(lead.cancelled_at, "cancelled", { reason: "cancelled" }));
  return entries;
}

/** The timeline's word for each result. */
const TIMELINE_EVENT_OF_RESULT = {
  ok: "attempt_ok",
  error: "attempt_error",
  dead: "dead",
  suppressed: "suppressed",
  delivered: "provider_report",
  undelivered: "provider_report",
  failed: "provider_report",
} as const satisfies Record<FollowupResult["data"]["result"], TimelineEvent>;

/**
 * Attempts from the results; a dead letter still waiting in FOLLOWUP_DLQ is merged into its
 * step's last `dead` result, or becomes a `dead` entry of its own when that result is missing.
 */
function deliveryEntries(sources: LeadSources): TimelineEntry[] {
  const entries: TimelineEntry[] = [];
  const lastDeadEntry = new Map<number, TimelineEntry>();
  for (const r of [...sources.results].sort(byTime)) {
    const d = r.data;
    const event = TIMELINE_EVENT_OF_RESULT[d.result];
    const e = entry(
      r.time,
      event,
      {
        attempt: d.attempt,
        channel: d.channel,
        status_code: d.status_code,
        duration_ms: d.duration_ms,
        ...(d.error !== undefined ? { error: d.error } : {}),
        ...(d.retry_in_ms !== undefined ? { retry_in_ms: d.retry_in_ms } : {}),
        ...(d.lateness_ms !== undefined ? { lateness_ms: d.lateness_ms } : {}),
        ...(d.provider !== undefined ? { provider: d.provider } : {}),
        ...(d.provider_message_id !== undefined ? { provider_message_id: d.provider_message_id } : {}),
        ...(d.reason !== undefined ? { reason: d.reason } : {}),
        ...(isProviderReport(d.result) ? { status: d.result } : {}),
      },
      d.step,
    );
    entries.push(e);
    if (event === "dead") lastDeadEntry.set(d.step, e);
  }
  for (const letter of [...sources.deadLetters].sort(byTime)) {
    const d = letter.data;
    const letterDetail = {
      in_dead_letters: true,
      reason: d.reason,
      attempts: d.attempts,
      last_status_code: d.last_status_code,
      last_error: d.last_error,
    };
    const matching = lastDeadEntry.get(d.step);
    if (matching) Object.assign(matching.detail ?? {}, letterDetail);
    else entries.push(entry(letter.time, "dead", letterDetail, d.step));
  }
  return entries;
}

function replayEntries(replays: FollowupReplayed[]): TimelineEntry[] {
  return replays.map((r) =>
    entry(
      r.time,
      "replayed",
      { replays: r.data.replays, attempts_before: r.data.attempts_before, channel: r.data.channel },
      r.data.step,
    ),
  );
}

function receiptEntries(receipts: HookReceipt[]): TimelineEntry[] {
  return receipts.map((r) =>
    entry(
      r.received_at,
      "hook_received",
      {
        webhook_id: r.webhook_id,
        auth: r.auth,
        ...(r.strategy !== undefined ? { strategy: r.strategy } : {}),
        ...(r.attempt !== undefined ? { attempt: r.attempt } : {}),
      },
      r.step,
    ),
  );
}

/** Sorted by time; entries at the same instant in the order things happen. */
export function sortTimeline(entries: TimelineEntry[]): TimelineEntry[] {
  const rank = (e: TimelineEntry) => EVENT_ORDER.indexOf(e.event as TimelineEvent);
  return [...entries].sort(
    (a, b) => Date.parse(a.at) - Date.parse(b.at) || rank(a) - rank(b) || (a.step ?? 0) - (b.step ?? 0),
  );
}

export function buildLeadView(sources: LeadSources): LeadView {
  const { lead, plan } = sources;
  const stopped = followupsStopped(lead, plan);
  const due = dueTimes(sources);
  const followups = (plan?.steps ?? [])
    .map((step) => followupOf(step, sources, stopped, due))
    .sort((a, b) => a.step - b.step);
  const timeline = sortTimeline([
    scoredEntry(lead, sources.leadEvents),
    ...outcomeEntries(lead, sources.leadEvents),
    ...planEntries(plan, lead, due),
    ...deliveryEntries(sources),
    ...replayEntries(sources.replays),
    ...receiptEntries(sources.receipts),
  ]);
  return {
    lead: {
      lead_id: lead.lead_id,
      name: lead.name,
      phone: lead.phone,
      ...(lead.email !== undefined ? { email: lead.email } : {}),
      ...(lead.timezone !== undefined ? { timezone: lead.timezone } : {}),
      details: lead.details,
      enrichment: lead.enrichment,
      pred_prob: lead.pred_prob,
      model_version: lead.model_version,
      created_at: lead.created_at,
      ...(lead.outcome !== undefined ? { outcome: lead.outcome } : {}),
    },
    qualified: plan === null ? null : plan.steps.length > 0 || plan.holdout === true,
    ...(plan?.holdout ? { holdout: true } : {}),
    followups,
    timeline,
  };
}
