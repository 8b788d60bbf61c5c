import { z } from "zod";
import { Intent, OUTCOMES, type Outcome, Sentiment, STOPPING_OUTCOMES, Token, Urgency } from "./lead.js";
import { namedRecordSchemas } from "./named-records.js";
import { parseDelay, ScheduleError, strategyName } from "./schedule.js";
import { SendWindow } from "./send-window.js";
import { assertToken } from "./subjects.js";

/**
 * Sequences: a tenant's follow-up rules, in the `sequences` KV bucket under `<tenant>.<name>`.
 * The scheduler enrols each scored lead in at most one (chooseSequence); a tenant without any
 * keeps the environment's rule as its built-in sequence (builtInSequence).
 */

/** The channels the dispatcher has (or is getting) a registry entry for; a step names one of them. */
export const KNOWN_CHANNELS = ["hook", "sms", "email", "slack"] as const;
export const KnownChannel = z.enum(KNOWN_CHANNELS, { error: `must be one of ${KNOWN_CHANNELS.join(", ")}` });
export type KnownChannel = z.infer<typeof KnownChannel>;

export const MAX_SEQUENCE_STEPS = 20;

/**
 * The most sequences a tenant may have. A tenant's are read in one direct get of the last value
 * of each key, which nats-server answers for at most 1024 keys ("too many results" beyond), and
 * the scheduler matches every lead against all of them.
 */
export const MAX_SEQUENCES_PER_TENANT = 100;

const NAME_RULE = "must be 1-64 characters of a-z, 0-9, '_' or '-'";
/** A sequence's name: lower case, so `<tenant>.<name>` is one key however a caller spells it. */
export const SequenceName = z.string().regex(/^[a-z0-9_-]{1,64}$/, NAME_RULE);
export type SequenceName = z.infer<typeof SequenceName>;

function oneOf<const T extends string>(values: readonly T[]) {
  return z.enum(values as readonly [T, ...T[]], { error: `must be one of ${values.join(", ")}` });
}

function listOf<T extends z.ZodType>(item: T, what: string) {
  return z.array(item).min(1, `must list at least one ${what}; leave it out to match any`);
}

/** Every criterion given must hold; none given matches every lead. */
export const SequenceMatch = z.strictObject({
  min_pred_prob: z
    .number("must be a number from 0 to 1")
    .min(0, "must be a number from 0 to 1")
    .max(1, "must be a number from 0 to 1")
    .optional(),
  intents: listOf(oneOf(Intent.options), "intent").optional(),
  urgency: listOf(oneOf(Urgency.options), "urgency").optional(),
  sentiment: listOf(oneOf(Sentiment.options), "sentiment").optional(),
});
export type SequenceMatch = z.infer<typeof SequenceMatch>;

/** A ScheduleError's reason without its "schedule part N" prefix: here the path says which step. */
function delayIssue(raw: string): string | null {
  try {
    parseDelay(raw);
    return null;
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    const prefix = `schedule part ${err.position} ${JSON.stringify(err.part)}: `;
    return `${JSON.stringify(err.part)}: ${err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message}`;
  }
}

/** The most variants a step may list. */
export const MAX_STEP_VARIANTS = 10;

/** One variant of a step (experiments): the template it sends and its share of the leads. */
export const StepVariant = z.strictObject({
  name: z.string("must be a variant name").regex(/^[a-z0-9_-]{1,64}$/, NAME_RULE),
  template: z.string("must be a template name").regex(/^[a-z0-9_-]{1,64}$/, NAME_RULE),
  /** Relative: weights 50 and 50 split the leads in halves, 1 and 3 in a quarter and three quarters. */
  weight: z
    .number("must be a positive integer")
    .int("must be a positive integer")
    .min(1, "must be a positive integer")
    .max(1_000_000, "must be at most 1000000"),
});
export type StepVariant = z.infer<typeof StepVariant>;

function variantList(variant: typeof StepVariant) {
  return z
    .array(variant)
    .min(2, "must list at least two variants; a step with one template names it in template")
    .max(MAX_STEP_VARIANTS, `must list at most ${MAX_STEP_VARIANTS} variants`)
    .superRefine((variants, ctx) => {
      const seen = new Map<string, number>();
      variants.forEach((v, i) => {
        const first = seen.get(v.name);
        if (first !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: [i, "name"],
            message: `repeats the name of variant ${first + 1} (${JSON.stringify(v.name)}): names must be unique`,
          });
        } else seen.set(v.name, i);
      });
    });
}

/** A step names one template or lists variants, never both: which would it send? */
function oneTemplateOrVariants(
  step: { template?: string | undefined; variants?: unknown },
  ctx: z.RefinementCtx,
) {
  if (step.template !== undefined && step.variants !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["variants"],
      message: "must not be given with template: a step names one template or lists variants",
    });
  }
}

const SequenceStepFields = z.strictObject({
  /** From the lead's creation (not from the previous step), in FOLLOWUP_SCHEDULES syntax: 30m, 2h, 1d. */
  delay: z
    .string("must be a delay such as 30m, 2h or 1d")
    .superRefine((raw, ctx) => {
      const issue = delayIssue(raw);
      if (issue !== null) ctx.addIssue({ code: "custom", message: issue });
    })
    .describe("From the lead's creation: a number with a unit s, m, h or d (none: seconds), such as 30m"),
  channel: KnownChannel,
  /** The template the channel renders (the hook channel sends its fixed payload without one). */
  template: z
    .string()
    .regex(/^[a-z0-9_-]{1,64}$/, NAME_RULE)
    .optional(),
  /** Instead of template: the lead is assigned one of these (assignVariant), the same on every redelivery. */
  variants: variantList(StepVariant).optional(),
});

export const SequenceStep = SequenceStepFields.superRefine(oneTemplateOrVariants);
export type SequenceStep = z.infer<typeof SequenceStep>;

/** A stored step: unknown fields kept (a reader older than the writer still reads it). */
const StoredSequenceStep = SequenceStepFields.extend({
  variants: variantList(StepVariant.loose()).optional(),
})
  .loose()
  .superRefine(oneTemplateOrVariants);

/** The steps, in time order (delays may repeat: two channels at once). */
function stepList(step: typeof SequenceStep | typeof StoredSequenceStep) {
  return z
    .array(step)
    .min(1, "must list at least one step")
    .max(MAX_SEQUENCE_STEPS, `must list at most ${MAX_SEQUENCE_STEPS} steps`)
    .superRefine((steps, ctx) => {
      // Delays count from the lead's creation, so a shorter one after a longer one is almost
      // always a delay meant "after the previous step"; refusing it keeps steps in time order.
      let previous = 0;
      steps.forEach((s, i) => {
        if (delayIssue(s.delay) !== null) return;
        const seconds = parseDelay(s.delay);
        if (seconds < previous) {
          ctx.addIssue({
            code: "custom",
            path: [i, "delay"],
            message: `must not be shorter than step ${i}'s delay (${steps[i - 1]?.delay}): delays count from the lead's creation`,
          });
        }
        previous = Math.max(previous, seconds);
      });
    });
}

/**
 * The fields of a sequence. A request refuses unknown fields (a misspelt criterion would match
 * every lead); a stored record keeps them, so a reader older than the writer still reads it.
 */
function sequenceShape(nested: "strict" | "loose") {
  const loose = nested === "loose";
  return {
    enabled: z.boolean("must be true or false").default(true),
    /** Higher wins when several sequences match a lead; ties go to the name first in order. */
    priority: z
      .number("must be an integer from 0 to 1000")
      .int("must be an integer from 0 to 1000")
      .min(0, "must be an integer from 0 to 1000")
      .max(1000, "must be an integer from 0 to 1000")
      .default(0),
    match: (loose ? SequenceMatch.loose() : SequenceMatch).default({}),
    steps: stepList(loose ? StoredSequenceStep : SequenceStep),
    /** Absent: any time. */
    send_window: (loose ? SendWindow.loose() : SendWindow).optional(),
    /** Outcomes that stop this sequence's remaining steps. */
    stop_on: z.array(oneOf(OUTCOMES)).default([...STOPPING_OUTCOMES]),
    /**
     * The percentage of the leads it matches that are enrolled but sent nothing (inHoldout), so
     * the lift of following up at all can be measured. Absent: 0.
     */
    holdout_pct: z
      .number("must be a number from 0 to 50")
      .min(0, "must be a number from 0 to 50")
      .max(50, "must be a number from 0 to 50")
      .optional(),
  };
}

const SequenceRequest = z.strictObject(sequenceShape("strict"));

/** A sequence as the issue that introduced them shows one: the example of the API documents. */
export const SEQUENCE_EXAMPLE = {
  enabled: true,
  priority: 10,
  match: { min_pred_prob: 0.7, intents: ["lead_capture"], urgency: ["high"] },
  steps: [
    { delay: "30m", channel: "sms", template: "first-touch" },
    { delay: "1d", channel: "email", template: "recap" },
  ],
  send_window: {
    timezone: "America/New_York",
    days: ["mon", "tue", "wed", "thu", "fri"],
    start: "09:00",
    end: "18:00",
  },
  stop_on: ["booked", "unqualified", "spam"],
} satisfies z.input<typeof SequenceRequest>;

/** Body of `PUT /v1/sequences/:name`. */
export const Sequence = SequenceRequest.meta({
  id: "Sequence",
  description: "Body of PUT /v1/sequences/:name",
  examples: [SEQUENCE_EXAMPLE],
});
export type Sequence = z.output<typeof Sequence>;

/** A sequence as stored in the `sequences` KV bucket under `<tenant>.<name>`. */
export const SequenceRecord = z
  .looseObject({
    ...sequenceShape("loose"),
    tenant: Token,
    name: SequenceName,
    updated_at: z.iso.datetime(),
  })
  .meta({ id: "SequenceRecord", description: "Value of a sequence in the sequences KV bucket" });
export type SequenceRecord = z.output<typeof SequenceRecord>;

/** A record as read from the bucket, with the KV revision it was read at (for If-Match and plans). */
export type StoredSequence = SequenceRecord & { revision: number };

/** The key of a tenant's sequence in the `sequences` bucket. */
export function sequenceKey(tenant: string, name: string): string {
  return `${assertToken("tenant", tenant)}.${SequenceName.parse(name)}`;
}

const SEQUENCE_API = namedRecordSchemas("Sequence", "sequences", SequenceName, SequenceRecord.shape);

/** `/v1/sequences/:name`: the sequence named by the path. */
export const SequenceParams = SEQUENCE_API.params;
export type SequenceParams = z.infer<typeof SequenceParams>;
/** A stored sequence as the API shows it: the record less its tenant (the caller's), with its revision. */
export const SequenceView = SEQUENCE_API.view;
export type SequenceView = z.infer<typeof SequenceView>;
export const SequenceList = SEQUENCE_API.list;
export type SequenceList = z.infer<typeof SequenceList>;
export const SequenceDeleted = SEQUENCE_API.deleted;
export type SequenceDeleted = z.infer<typeof SequenceDeleted>;

/**
 * What the scheduler enrols a lead in: a stored sequence, or the built-in one (whose channel is
 * FOLLOWUP_CHANNEL, any registry name, and whose schedule may be empty).
 */
export interface SequenceDefinition {
  name: string;
  enabled: boolean;
  priority: number;
  match: SequenceMatch;
  steps: readonly {
    delay: string;
    channel: string;
    template?: string;
    variants?: readonly { name: string; template: string; weight: number }[];
  }[];
  send_window?: SendWindow;
  stop_on: readonly Outcome[];
  holdout_pct?: number;
}

/** The scored lead's fields a match reads (as in lead.scored.v1's data). */
export interface SequenceLead {
  pred_prob: number;
  intent: Intent;
  urgency: Urgency;
  sentiment: Sentiment;
}

export function sequenceMatches(match: SequenceMatch, lead: SequenceLead): boolean {
  return (
    (match.min_pred_prob === undefined || lead.pred_prob >= match.min_pred_prob) &&
    (match.intents === undefined || match.intents.includes(lead.intent)) &&
    (match.urgency === undefined || match.urgency.includes(lead.urgency)) &&
    (match.sentiment === undefined || match.sentiment.includes(lead.sentiment))
  );
}

/**
 * The enabled sequence with the highest priority whose match holds, or null. Equal priorities go
 * to the name that sorts first (code-unit order, the same on every machine and locale): the choice
 * depends only on what the tenant wrote, not on the order the bucket lists keys or on edit times,
 * and renaming is how a tenant breaks a tie.
 */
export function matchSequence<S extends Pick<SequenceDefinition, "name" | "enabled" | "priority" | "match">>(
  sequences: readonly S[],
  lead: SequenceLead,
): S | null {
  let chosen: S | null = null;
  for (const s of sequences) {
    if (!s.enabled || !sequenceMatches(s.match, lead)) continue;
    if (
      chosen === null ||
      s.priority > chosen.priority ||
      (s.priority === chosen.priority && s.name < chosen.name)
    ) {
      chosen = s;
    }
  }
  return chosen;
}

/** The name of the built-in sequence of a tenant that has none of its own. */
export const BUILT_IN_SEQUENCE = "default";

/** The scheduler's environment that makes up the built-in sequence (its config keys, parsed). */
export interface BuiltInSequenceEnv {
  FOLLOWUP_ENABLED: boolean;
  FOLLOWUP_RULE_TOP_P: number;
  /** Delays in seconds, in step order. */
  FOLLOWUP_SCHEDULES: readonly number[];
  FOLLOWUP_CHANNEL: string;
}

/**
 * Today's rule as a sequence: enabled by FOLLOWUP_ENABLED, matching `pred_prob >= TOP_P`, one
 * step per delay ("1800s", as the hook's `strategy` names it) on FOLLOWUP_CHANNEL, no window.
 */
export function builtInSequence(env: BuiltInSequenceEnv): SequenceDefinition {
  return {
    name: BUILT_IN_SEQUENCE,
    enabled: env.FOLLOWUP_ENABLED,
    priority: 0,
    match: { min_pred_prob: env.FOLLOWUP_RULE_TOP_P },
    steps: env.FOLLOWUP_SCHEDULES.map((delay) => ({
      delay: strategyName(delay),
      channel: env.FOLLOWUP_CHANNEL,
    })),
    stop_on: [...STOPPING_OUTCOMES],
  };
}

/** The step delays of a validated sequence, in seconds, in step order. */
export function sequenceDelays(sequence: Pick<SequenceDefinition, "steps">): number[] {
  return sequence.steps.map((step, i) => parseDelay(step.delay, i + 1));
}

export type EnrolmentSkip = "disabled" | "empty_schedule" | "below_threshold" | "no_matching_sequence";
export type Enrolment<S> = { sequence: S } | { skipped: EnrolmentSkip };

/**
 * Which sequence a scored lead is enrolled in. A tenant with sequences gets matchSequence's choice
 * or `no_matching_sequence`. A tenant with none gets the built-in one with today's skip reasons,
 * in today's order (disabled, empty_schedule, below_threshold), so nothing it sees changes.
 */
export function chooseSequence<S extends SequenceDefinition>(
  tenantSequences: readonly S[],
  builtIn: SequenceDefinition,
  lead: SequenceLead,
): Enrolment<S | SequenceDefinition> {
  if (tenantSequences.length > 0) {
    const chosen = matchSequence(tenantSequences, lead);
    return chosen === null ? { skipped: "no_matching_sequence" } : { sequence: chosen };
  }
  if (!builtIn.enabled) return { skipped: "disabled" };
  if (builtIn.steps.length === 0) return { skipped: "empty_schedule" };
  if (!sequenceMatches(builtIn.match, lead)) return { skipped: "below_threshold" };
  return { sequence: builtIn };
}
