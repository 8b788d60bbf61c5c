import { z } from "zod";
import { Token } from "./lead.js";

/**
 * The scheduler's plan for one lead, in the `followup_plans` KV bucket under
 * `<tenant>.<leadId>`. It is created once (KV create fails when it exists), which is what
 * keeps a `lead.scored` redelivered hours later from scheduling anything again: the
 * stream's duplicate window alone only covers minutes.
 */
export const PlannedStepState = z.enum(["pending", "due", "cancelled"]);
export type PlannedStepState = z.infer<typeof PlannedStepState>;

export const PlannedStep = z.looseObject({
  step: z.number().int().min(1),
  delay_s: z.number().positive(),
  due_at: z.iso.datetime(),
  state: PlannedStepState,
  /** When the due follow-up was handed to the dispatcher. */
  due_published_at: z.iso.datetime().optional(),
  /** The sequence step's channel (plans made before sequences: the deployment's FOLLOWUP_CHANNEL). */
  channel: z.string().min(1).max(64).optional(),
  /** The template the dispatcher renders at delivery; none: the channel's built-in message. */
  template: z.string().min(1).max(64).optional(),
  /** Where a send window moved the step: its raw due time (lead creation + delay). */
  moved_from: z.iso.datetime().optional(),
  /**
   * An SMS step whose recipient's zone is unknown (no lead zone, no single-zone phone country, no
   * window zone): its quiet hours were read in UTC.
   */
  timezone_assumed: z.boolean().optional(),
  /** The sequence of a step enrolled by hand (POST /v1/lead/:id/enroll); absent: the plan's sequence. */
  sequence: z.object({ name: z.string().min(1).max(64), revision: z.number().int().min(0) }).optional(),
  /** The variant of the step the lead was assigned (experiments), with the template it names. */
  variant: z.string().min(1).max(64).optional(),
});
export type PlannedStep = z.infer<typeof PlannedStep>;

export const FollowupPlan = z
  .looseObject({
    lead_id: Token,
    tenant: Token,
    lead_created_at: z.iso.datetime(),
    pred_prob: z.number().min(0).max(1),
    planned_at: z.iso.datetime(),
    /** Empty when the lead did not qualify; `skipped` says why. */
    steps: z.array(PlannedStep),
    skipped: z
      .enum(["below_threshold", "disabled", "empty_schedule", "stopped", "no_matching_sequence"])
      .optional(),
    /** The sequence the lead was enrolled in, as it was when the plan was made (edits never change a plan). */
    sequence: z.object({ name: z.string().min(1).max(64), revision: z.number().int().min(0) }).optional(),
    /**
     * The outcomes that stop this plan (the sequence's stop_on; with steps enrolled by hand, the
     * union of their sequences'); absent: booked, unqualified, spam.
     */
    stop_on: z.array(z.string()).optional(),
    /** The lead is in the sequence's holdout (experiments): enrolled, sent nothing. */
    holdout: z.boolean().optional(),
    cancelled: z.object({ at: z.iso.datetime(), reason: z.string() }).optional(),
  })
  .meta({ id: "FollowupPlan", description: "Value of a lead's plan in the followup_plans KV bucket" });
export type FollowupPlan = z.infer<typeof FollowupPlan>;

/** Whether the plan has the sequence's steps (enrolled at scoring, or by hand): an enrolment adds them once. */
export function enrolledIn(plan: FollowupPlan, sequence: string): boolean {
  return plan.sequence?.name === sequence || plan.steps.some((s) => s.sequence?.name === sequence);
}

/**
 * A follow-up received by lead-intake's own hook, in the `hook_receipts` KV bucket under
 * `<tenant>.<leadId>.<hash of webhook-id>`: created once per webhook-id, so a replay is
 * acknowledged and not recorded twice.
 */
export const HookReceipt = z
  .looseObject({
    webhook_id: z.string(),
    tenant: Token,
    lead_id: Token,
    step: z.number().int().min(1).optional(),
    strategy: z.string().optional(),
    attempt: z.number().int().min(1).optional(),
    received_at: z.iso.datetime(),
    /** How the caller proved itself: a Standard Webhooks signature or an API key. */
    auth: z.enum(["signature", "api_key"]),
  })
  .meta({ id: "HookReceipt", description: "Value of a received follow-up in the hook_receipts KV bucket" });
export type HookReceipt = z.infer<typeof HookReceipt>;

/**
 * The step of a plan whose timer is written next: one timer per lead at a time. The scheduler
 * writes the first pending step's (`after` 0) when it plans; the dispatcher writes the next
 * one's (`after` = the step whose marker it holds) before it acks that marker, so a crash in
 * between redelivers the marker and the write is made again (refused when it was stored:
 * expected last subject sequence 0). Steps are numbered in due order (a window never moves a
 * step before the previous one), so "the next step" is the next one due.
 */
export function nextTimedStep(
  plan: Pick<FollowupPlan, "steps" | "cancelled" | "skipped">,
  after: number,
): PlannedStep | null {
  if (plan.cancelled || plan.skipped) return null;
  let next: PlannedStep | null = null;
  for (const step of plan.steps) {
    if (step.step <= after || step.state !== "pending") continue;
    if (next === null || step.step < next.step) next = step;
  }
  return next;
}
