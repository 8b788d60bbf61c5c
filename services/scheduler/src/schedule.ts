import {
  type ExperimentPlan,
  type FollowupPlan,
  type PlannedStep,
  type RecipientZones,
  type SequenceDefinition,
  sequenceDelays,
  sequenceStepTimes,
} from "@followup/contracts";
import type { Backoff } from "@followup/service-kit";

/**
 * The scheduler's decisions, without I/O: whether a scored lead gets follow-ups, when each
 * step is due, what TTL its timer gets, what to do with a marker that arrives before due_at,
 * and the back-off after a broker failure.
 */

/** FOLLOWUP_ENABLED, FOLLOWUP_RULE_TOP_P and FOLLOWUP_SCHEDULES (delays in seconds, in step order). */
export interface FollowupRule {
  readonly enabled: boolean;
  readonly topP: number;
  readonly delays: readonly number[];
}

/** Why a scored lead gets no follow-ups at all (its plan's `skipped`); why planned ones stop is a StopReason. */
export type SkipReason = NonNullable<FollowupPlan["skipped"]>;

export type Eligibility = { eligible: true } | { eligible: false; reason: SkipReason };

/** Follow-ups when enabled, with a non-empty schedule, and `pred_prob >= topP` (the threshold qualifies). */
export function decideEligibility(rule: FollowupRule, predProb: number): Eligibility {
  if (!rule.enabled) return { eligible: false, reason: "disabled" };
  if (rule.delays.length === 0) return { eligible: false, reason: "empty_schedule" };
  if (!(predProb >= rule.topP)) return { eligible: false, reason: "below_threshold" };
  return { eligible: true };
}

/**
 * One pending step per delay, numbered from 1 in schedule order, each due at the lead's creation
 * time plus its delay (absolute, so a late or redelivered lead.scored does not shift it).
 */
export function planSteps(leadCreatedAt: Date, delays: readonly number[]): PlannedStep[] {
  const createdMs = leadCreatedAt.getTime();
  return delays.map((delay, i) => ({
    step: i + 1,
    delay_s: delay,
    due_at: new Date(createdMs + Math.round(delay * 1000)).toISOString(),
    state: "pending" as const,
  }));
}

/** The sequence a step was planned from, as plans record it. */
export interface SequenceRef {
  name: string;
  revision: number;
}

/**
 * One pending step per step of a sequence, numbered from `firstStep`, each due at `start` plus its
 * delay moved into the sequence's send window (and SMS quiet hours) in the recipient's zones, with
 * its channel, template and where a window moved it from. A step whose windows never open
 * together is left out, and so is reported in `never`: it can never be sent.
 */
export function planSequenceSteps(
  sequence: Pick<SequenceDefinition, "steps" | "send_window">,
  start: Date,
  zones: RecipientZones,
  options: {
    firstStep?: number;
    sequence?: SequenceRef;
    /** The lead's variant per step (contracts' planExperiment), in the sequence's step order. */
    experiment?: ExperimentPlan["steps"];
  } = {},
): { steps: PlannedStep[]; never: number } {
  const delays = sequenceDelays(sequence);
  const times = sequenceStepTimes(
    start,
    sequence.steps.map((step, i) => ({ delay_s: delays[i]!, channel: step.channel })),
    sequence.send_window,
    zones,
  );
  const steps: PlannedStep[] = [];
  let never = 0;
  times.forEach((time, i) => {
    if (time === null) {
      never++;
      return;
    }
    const step = sequence.steps[i]!;
    const assigned = options.experiment?.[i];
    const template = assigned?.template ?? step.template;
    steps.push({
      step: (options.firstStep ?? 1) + steps.length,
      delay_s: delays[i]!,
      due_at: time.due_at.toISOString(),
      state: "pending",
      channel: step.channel,
      ...(template !== undefined ? { template } : {}),
      ...(assigned?.variant !== undefined ? { variant: assigned.variant } : {}),
      ...(time.moved_from ? { moved_from: time.moved_from.toISOString() } : {}),
      ...(time.timezone_assumed ? { timezone_assumed: true } : {}),
      ...(options.sequence ? { sequence: options.sequence } : {}),
    });
  });
  return { steps, never };
}

/**
 * Longest a marker is held before its due_at. A floor-rounded TTL makes a marker at most one
 * second early; more than this means a clock stepped or a timer was published some other way,
 * and the marker goes back to the server (nak with a delay) instead of pinning a handler.
 */
export const MAX_HOLD_MS = 2_000;

export type MarkerTiming =
  | { action: "publish" }
  | { action: "hold"; ms: number }
  | { action: "retry_later"; ms: number };

/** What to do with a marker seen at `nowMs` for a step due at `dueAtMs`. */
export function markerTiming(dueAtMs: number, nowMs: number): MarkerTiming {
  const early = dueAtMs - nowMs;
  if (early <= 0) return { action: "publish" };
  if (early <= MAX_HOLD_MS) return { action: "hold", ms: early };
  return { action: "retry_later", ms: early };
}

/**
 * How long a message that hit a broker failure (KV, publish, purge) waits before it is tried
 * again, here and after a nak: exponential in its attempt (or delivery) count from 500 ms,
 * capped at 30 s, with up to 20% jitter so copies that failed together do not retry together.
 * The attempts are those run on the message a copy holds before it naks (see consumer.ts).
 */
export const HANDLER_RETRY: Backoff = { baseMs: 500, maxMs: 30_000, jitter: 0.2, attempts: 6 };
