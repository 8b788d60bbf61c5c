import {
  type ArmReport,
  OUTCOMES,
  type Outcome,
  type SequenceReport,
  type StepReportRow,
  type StepsReport,
  twoProportionTest,
  wilsonInterval,
} from "@followup/contracts";
import { type CounterDoc, HOLDOUT_ARM, NO_VARIANT_ARM } from "./projection.js";

/** The reports read from the counters documents, pure: the routes and the rebuild's check use them. */

const HOUR_MS = 3_600_000;

/** The UTC days from `since` to `until`, both included (YYYY-MM-DD). */
export function daysBetween(since: string, until: string): string[] {
  const days: string[] = [];
  for (let t = Date.parse(`${since}T00:00:00Z`); t <= Date.parse(`${until}T00:00:00Z`); t += 24 * HOUR_MS) {
    days.push(new Date(t).toISOString().slice(0, 10));
  }
  return days;
}

interface ArmCounts {
  enrolled: number;
  delivered: number;
  converted: number;
  outcomes: Partial<Record<Outcome, number>>;
  inside: number;
}

/**
 * The sequence report from its day documents (`day -> counters`). A lead without an outcome is
 * inside its attribution window while its creation hour's end plus the window is after `now`:
 * counted by the hour, so a lead may be shown inside for up to an hour longer than it is.
 */
export function sequenceReport(
  sequence: string,
  range: { since: string; until: string },
  docs: ReadonlyMap<string, CounterDoc>,
  windowMs: number,
  now: Date,
): SequenceReport {
  const arms = new Map<string, ArmCounts>();
  for (const [day, doc] of docs) {
    if (day < range.since || day > range.until) continue;
    for (const [field, value] of Object.entries(doc)) {
      const [arm, counter, detail] = field.split(".") as [string, string, string | undefined];
      let counts = arms.get(arm);
      if (counts === undefined) {
        counts = { enrolled: 0, delivered: 0, converted: 0, outcomes: {}, inside: 0 };
        arms.set(arm, counts);
      }
      if (counter === "enrolled" || counter === "delivered" || counter === "converted")
        counts[counter] += value;
      else if (counter === "outcome" && (OUTCOMES as readonly string[]).includes(detail ?? "")) {
        const kind = detail as Outcome;
        counts.outcomes[kind] = (counts.outcomes[kind] ?? 0) + value;
      } else if (counter === "open") {
        const hourEnd = Date.parse(`${day}T${detail}:00:00Z`) + HOUR_MS;
        if (hourEnd + windowMs > now.getTime()) counts.inside += value;
      }
    }
  }
  const holdout = arms.get(HOLDOUT_ARM);
  const row = (arm: string, counts: ArmCounts, compare: boolean): ArmReport => {
    const test =
      compare && holdout !== undefined
        ? twoProportionTest(counts.converted, counts.enrolled, holdout.converted, holdout.enrolled)
        : null;
    return {
      variant: arm === HOLDOUT_ARM || arm === NO_VARIANT_ARM ? null : arm,
      enrolled: counts.enrolled,
      followups_delivered: counts.delivered,
      outcomes: counts.outcomes,
      converted: counts.converted,
      conversion_rate: counts.enrolled > 0 ? counts.converted / counts.enrolled : null,
      conversion_ci95: wilsonInterval(counts.converted, counts.enrolled),
      vs_holdout: test === null ? null : { difference: test.difference, p_value: test.p },
      inside_attribution_window: counts.inside,
    };
  };
  const variants = [...arms.entries()]
    .filter(([arm, counts]) => arm !== HOLDOUT_ARM && counts.enrolled > 0)
    .sort(([a], [b]) => (a === NO_VARIANT_ARM ? -1 : b === NO_VARIANT_ARM ? 1 : a < b ? -1 : 1))
    .map(([arm, counts]) => row(arm, counts, true));
  return {
    sequence,
    since: range.since,
    until: range.until,
    attribution_window_days: windowMs / (24 * HOUR_MS),
    variants,
    holdout: holdout !== undefined && holdout.enrolled > 0 ? row(HOLDOUT_ARM, holdout, false) : null,
  };
}

/** The steps report from the tenant's steps day documents, rows by sequence, step, channel and variant. */
export function stepsReport(
  range: { since: string; until: string },
  docs: ReadonlyMap<string, CounterDoc>,
  sequence?: string,
): StepsReport {
  const rows = new Map<string, StepReportRow>();
  for (const [day, doc] of docs) {
    if (day < range.since || day > range.until) continue;
    for (const [field, value] of Object.entries(doc)) {
      const dot = field.lastIndexOf(".");
      const key = field.slice(0, dot);
      const counter = field.slice(dot + 1);
      const [seq, step, channel, variant] = key.split("|") as [string, string, string, string];
      if (sequence !== undefined && seq !== sequence) continue;
      let row = rows.get(key);
      if (row === undefined) {
        row = {
          sequence: seq,
          step: Number(step),
          channel,
          variant: variant === "-" ? null : variant,
          delivered: 0,
          failed: 0,
          suppressed: 0,
          converted_after: 0,
        };
        rows.set(key, row);
      }
      if (
        counter === "delivered" ||
        counter === "failed" ||
        counter === "suppressed" ||
        counter === "converted_after"
      ) {
        row[counter] += value;
      }
    }
  }
  const steps = [...rows.values()].sort(
    (a, b) =>
      (a.sequence < b.sequence ? -1 : a.sequence > b.sequence ? 1 : 0) ||
      a.step - b.step ||
      (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0) ||
      ((a.variant ?? "") < (b.variant ?? "") ? -1 : 1),
  );
  return { since: range.since, until: range.until, steps };
}
