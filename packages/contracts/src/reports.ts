import { z } from "zod";
import { Outcome } from "./lead.js";
import { SequenceName } from "./sequences.js";

/**
 * The conversion reports (services/reports): what a tenant asks and what it is answered. The
 * counts are of leads, each counted once, by the UTC day the lead was created.
 */

/** The longest range one report covers. */
export const MAX_REPORT_DAYS = 366;

const Day = z
  .string("must be a date (2026-12-01) or a date-time")
  .refine((v) => /^\d{4}-\d{2}-\d{2}/.test(v) && !Number.isNaN(Date.parse(v)), {
    message: "must be a date (2026-12-01) or a date-time",
  })
  .transform((v) => v.slice(0, 10));

/** `?since=&until=`: UTC days, both included; a date-time counts as its day. Default: the last 30 days. */
export const ReportRange = z.strictObject({
  since: Day.optional(),
  until: Day.optional(),
  /** Steps report only: one sequence's steps. */
  sequence: SequenceName.optional(),
});
export type ReportRange = z.infer<typeof ReportRange>;

export const ReportSequenceParams = z.strictObject({ name: SequenceName });

const Interval = z.object({ low: z.number(), high: z.number() });

/** One arm of a sequence: a variant (or all of its leads when no step has variants), or the holdout. */
export const ArmReport = z.object({
  /** The variant's name; null: the leads of a sequence without variants (and the holdout row). */
  variant: z.string().nullable(),
  enrolled: z.number().int(),
  /** Follow-ups delivered to these leads (a lead with two delivered steps counts two). */
  followups_delivered: z.number().int(),
  /** Each lead's last outcome, by kind. */
  outcomes: z.partialRecord(Outcome, z.number().int()),
  /** Leads booked within the attribution window of their creation. */
  converted: z.number().int(),
  /** converted / enrolled; null without leads. */
  conversion_rate: z.number().nullable(),
  /** The 95% Wilson interval of the conversion rate. */
  conversion_ci95: Interval,
  /** Against the holdout: this rate minus the holdout's, and the two-proportion test's p-value. */
  vs_holdout: z.object({ difference: z.number(), p_value: z.number() }).nullable(),
  /** Leads without an outcome yet whose attribution window is still open. */
  inside_attribution_window: z.number().int(),
});
export type ArmReport = z.infer<typeof ArmReport>;

export const SequenceReport = z
  .object({
    sequence: SequenceName,
    since: z.string(),
    until: z.string(),
    attribution_window_days: z.number(),
    variants: z.array(ArmReport),
    holdout: ArmReport.nullable(),
  })
  .meta({ id: "SequenceReport", description: "Body data of GET /v1/reports/sequences/:name" });
export type SequenceReport = z.infer<typeof SequenceReport>;

export const StepReportRow = z.object({
  sequence: z.string(),
  step: z.number().int(),
  channel: z.string(),
  variant: z.string().nullable(),
  delivered: z.number().int(),
  failed: z.number().int(),
  suppressed: z.number().int(),
  /** Leads booked within the attribution window, after this step was delivered to them. */
  converted_after: z.number().int(),
});
export type StepReportRow = z.infer<typeof StepReportRow>;

export const StepsReport = z
  .object({ since: z.string(), until: z.string(), steps: z.array(StepReportRow) })
  .meta({ id: "StepsReport", description: "Body data of GET /v1/reports/steps" });
export type StepsReport = z.infer<typeof StepsReport>;
