import type { CalibrationBin } from "@followup/contracts";
import { MIN_MODEL_AUC } from "../src/scoring/scoring.js";
import { auc, type LabelledLead } from "./training.js";

/**
 * Training from real outcomes, the pure part: labelling, the time split, the evaluation and the
 * promotion guard. train-outcomes.ts reads the leads and outcomes from NATS and calls these.
 */

/** A lead as the training reads it from the `leads` bucket. */
export interface OutcomeLead {
  tenant: string;
  lead_id: string;
  created_at: string;
  details: string;
  /** The hour of day of its creation in the lead's zone (leadHour). */
  hour: number;
}

/** An outcome as recorded (lead.outcome events): a lead may have several. */
export interface RecordedOutcomeEvent {
  tenant: string;
  lead_id: string;
  outcome: string;
  recorded_at: string;
}

export type Label = 1 | 0 | "spam" | "unlabelled";

/**
 * A lead's label for an attribution window H:
 * - younger than H: unlabelled, whatever it has: a young lead labelled only when it has an
 *   outcome already would over-count the quick ones, and the test window is the newest leads;
 * - any `spam` outcome: left out (not a lead at all);
 * - `booked` within H of its creation: 1;
 * - otherwise (unqualified, ghosted, nurture, qualified, a booking after H, no outcome): 0.
 * Every lead is labelled this way, whether it got follow-ups or not (below the threshold, in a
 * holdout): see the README on why a model trained only on followed-up leads is biased.
 */
export function labelOf(
  lead: Pick<OutcomeLead, "created_at">,
  outcomes: readonly Pick<RecordedOutcomeEvent, "outcome" | "recorded_at">[],
  now: Date,
  horizonMs: number,
): Label {
  const created = Date.parse(lead.created_at);
  if (now.getTime() - created < horizonMs) return "unlabelled";
  if (outcomes.some((o) => o.outcome === "spam")) return "spam";
  const booked = outcomes.some(
    (o) => o.outcome === "booked" && Date.parse(o.recorded_at) - created <= horizonMs,
  );
  return booked ? 1 : 0;
}

export type TimedLead = LabelledLead & { created_at: string };

export interface Labelled {
  leads: TimedLead[];
  counts: { positive: number; negative: number; spam: number; unlabelled: number };
}

/** Labels every lead with its outcomes (matched by tenant and lead id). */
export function labelLeads(
  leads: readonly OutcomeLead[],
  outcomes: readonly RecordedOutcomeEvent[],
  now: Date,
  horizonMs: number,
): Labelled {
  const byLead = new Map<string, RecordedOutcomeEvent[]>();
  for (const o of outcomes) {
    const key = `${o.tenant}.${o.lead_id}`;
    byLead.set(key, [...(byLead.get(key) ?? []), o]);
  }
  const counts = { positive: 0, negative: 0, spam: 0, unlabelled: 0 };
  const labelled: TimedLead[] = [];
  for (const lead of leads) {
    const label = labelOf(lead, byLead.get(`${lead.tenant}.${lead.lead_id}`) ?? [], now, horizonMs);
    if (label === "spam") counts.spam += 1;
    else if (label === "unlabelled") counts.unlabelled += 1;
    else {
      counts[label === 1 ? "positive" : "negative"] += 1;
      labelled.push({
        details: lead.details,
        hour: lead.hour,
        converted: label,
        created_at: lead.created_at,
      });
    }
  }
  return { leads: labelled, counts };
}

/** Oldest first; the newest `testFraction` of the leads is the test window. Never at random. */
export function timeSplit<T extends { created_at: string }>(
  rows: readonly T[],
  testFraction: number,
): { train: T[]; test: T[] } {
  const sorted = [...rows].sort((a, b) =>
    a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0,
  );
  const nTest = Math.max(1, Math.round(sorted.length * testFraction));
  return { train: sorted.slice(0, sorted.length - nTest), test: sorted.slice(sorted.length - nTest) };
}

/** Mean squared difference between the predicted probability and the outcome. */
export function brierScore(p: readonly number[], y: readonly number[]): number {
  let sum = 0;
  p.forEach((value, i) => {
    sum += (value - y[i]!) ** 2;
  });
  return sum / Math.max(1, p.length);
}

/** Ten bins of (nearly) equal size by predicted probability: predicted mean against observed rate. */
export function calibrationDeciles(p: readonly number[], y: readonly number[]): CalibrationBin[] {
  const order = p.map((_, i) => i).sort((a, b) => p[a]! - p[b]!);
  const bins: CalibrationBin[] = [];
  for (let d = 0; d < 10; d++) {
    const members = order.slice(
      Math.floor((d * order.length) / 10),
      Math.floor(((d + 1) * order.length) / 10),
    );
    if (members.length === 0) continue;
    const mean = (values: number[]) => values.reduce((s, v) => s + v, 0) / values.length;
    bins.push({
      decile: d + 1,
      n: members.length,
      mean_predicted: round(mean(members.map((i) => p[i]!))),
      observed_rate: round(mean(members.map((i) => y[i]!))),
    });
  }
  return bins;
}

const round = (value: number) => Math.round(value * 1e4) / 1e4;

/** A model's AUC may be at most this much below the current model's on the same window. */
export const MAX_AUC_DROP = 0.01;

export interface GuardDecision {
  promote: boolean;
  /** Why not, with the numbers; empty when promoted. */
  reasons: string[];
}

/**
 * Promotion: the new model's test AUC is at least MIN_MODEL_AUC and no more than MAX_AUC_DROP
 * below the current model's on the same test window (when there is a current model to score it).
 */
export function promotionGuard(newAuc: number, currentAuc: number | null): GuardDecision {
  const reasons: string[] = [];
  if (!(newAuc >= MIN_MODEL_AUC))
    reasons.push(`test AUC ${fmt(newAuc)} is below the minimum ${MIN_MODEL_AUC}`);
  if (currentAuc !== null && Number.isFinite(currentAuc) && newAuc < currentAuc - MAX_AUC_DROP) {
    reasons.push(
      `test AUC ${fmt(newAuc)} is more than ${MAX_AUC_DROP} below the current model's ${fmt(currentAuc)} on the same window`,
    );
  }
  return { promote: reasons.length === 0, reasons };
}

const fmt = (value: number) => (Number.isFinite(value) ? value.toFixed(4) : String(value));

/** AUC, Brier score, base rate and calibration of predictions `p` of outcomes `y`. */
export function evaluatePredictions(p: readonly number[], y: readonly number[]) {
  return {
    auc: round(auc(p, y)),
    brier: round(brierScore(p, y)),
    base_rate: round(y.reduce((s, v) => s + v, 0) / Math.max(1, y.length)),
    calibration: calibrationDeciles(p, y),
  };
}
