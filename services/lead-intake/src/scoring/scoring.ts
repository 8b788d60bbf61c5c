import { readFileSync } from "node:fs";
import { type Enrichment, Intent, LEAD_DETAILS_MAX, Sentiment, Urgency } from "@followup/contracts";
import { z } from "zod";

/**
 * The conversion model: a logistic regression over the enrichment, the length of the details and
 * the hour of day, trained offline by scripts/train-model.ts into model/conversion-model.json.
 * A model that is invalid or too weak is refused and pred_prob falls back to the enrichment's
 * baseline score, so a bad model file degrades scoring instead of stopping the service.
 */

/** A model with a lower held-out AUC than this is refused. */
export const MIN_MODEL_AUC = 0.65;
/** The `version` of the fallback scorer, stored as a lead's model_version. */
export const ENRICHMENT_SCORER_VERSION = "enrichment-baseline";

/**
 * The features the scorer can compute, in the order the trainer uses. `log1p_details_length` is
 * standardised with the model's `encoders.details_length` (mean and std of log1p(length) over the
 * training set); the hour is a point on a circle so that 23:00 is next to 00:00.
 */
export const FEATURES = [
  "intent=lead_capture",
  "intent=support",
  "intent=info",
  "sentiment=positive",
  "sentiment=negative",
  "sentiment=neutral",
  "urgency=high",
  "urgency=normal",
  "enrichment_score",
  "log1p_details_length",
  "hour_sin",
  "hour_cos",
] as const;
export type Feature = (typeof FEATURES)[number];

export type ScoringInput = {
  enrichment: Enrichment;
  /** Characters of details; clamped to [0, LEAD_DETAILS_MAX]. */
  detailsLength: number;
  /** Hour of day 0-23 of the lead's creation, see leadHour(). */
  hour: number;
};

export type Scorer = {
  version: string;
  source: "model" | "enrichment";
  /** Why the model was refused, when source is "enrichment". */
  refusal?: string;
  /** pred_prob, always a number in [0, 1]. */
  predict(input: ScoringInput): number;
};

/** The part of a pino logger the scorer uses. */
export type ScoringLog = {
  warn(context: object, message: string): void;
  error(context: object, message: string): void;
};

const DetailsLengthEncoder = z.object({ mean: z.number(), std: z.number().positive() });
export type DetailsLengthEncoder = z.infer<typeof DetailsLengthEncoder>;

export const ConversionModel = z
  .object({
    version: z.string().min(1),
    trained_at: z.iso.datetime(),
    features: z
      .array(z.enum(FEATURES))
      .min(1)
      .refine((names) => new Set(names).size === names.length, "must not repeat a feature"),
    encoders: z.object({
      intent: z.array(Intent),
      sentiment: z.array(Sentiment),
      urgency: z.array(Urgency),
      details_length: DetailsLengthEncoder,
    }),
    coefficients: z.record(z.string(), z.number()),
    intercept: z.number(),
    metrics: z.looseObject({
      auc: z.number().min(0).max(1),
      n_train: z.number().int().positive(),
      n_test: z.number().int().positive(),
    }),
    dataset: z.looseObject({
      generator: z.string(),
      seed: z.number().int(),
      n: z.number().int().positive(),
    }),
  })
  .superRefine((model, ctx) => {
    const listed = new Set<string>(model.features);
    for (const name of model.features) {
      if (model.coefficients[name] === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["coefficients", name],
          message: "is missing for a listed feature",
        });
      }
    }
    for (const name of Object.keys(model.coefficients)) {
      if (!listed.has(name)) {
        ctx.addIssue({ code: "custom", path: ["coefficients", name], message: "is not a listed feature" });
      }
    }
  });
export type ConversionModel = z.infer<typeof ConversionModel>;

/** A number in [0, 1]; NaN is 0, so a broken input never qualifies a lead. */
function toProbability(value: number): number {
  return Number.isNaN(value) ? 0 : Math.min(1, Math.max(0, value));
}

/** The feature vector in FEATURES order: the one definition shared by training and prediction. */
export function encodeFeatures(input: ScoringInput, detailsLength: DetailsLengthEncoder): number[] {
  const { intent, sentiment, urgency, score } = input.enrichment;
  const length = Number.isNaN(input.detailsLength)
    ? 0
    : Math.min(LEAD_DETAILS_MAX, Math.max(0, input.detailsLength));
  // An unknown hour sits at the centre of the circle: no hour effect at all.
  const angle = Number.isFinite(input.hour) ? (2 * Math.PI * (input.hour % 24)) / 24 : undefined;
  return [
    intent === "lead_capture" ? 1 : 0,
    intent === "support" ? 1 : 0,
    intent === "info" ? 1 : 0,
    sentiment === "positive" ? 1 : 0,
    sentiment === "negative" ? 1 : 0,
    sentiment === "neutral" ? 1 : 0,
    urgency === "high" ? 1 : 0,
    urgency === "normal" ? 1 : 0,
    toProbability(score),
    (Math.log1p(length) - detailsLength.mean) / detailsLength.std,
    angle === undefined ? 0 : Math.sin(angle),
    angle === undefined ? 0 : Math.cos(angle),
  ];
}

export function sigmoid(logit: number): number {
  return logit >= 0 ? 1 / (1 + Math.exp(-logit)) : Math.exp(logit) / (1 + Math.exp(logit));
}

function enrichmentScorer(refusal: string): Scorer {
  return {
    version: ENRICHMENT_SCORER_VERSION,
    source: "enrichment",
    refusal,
    predict: (input) => toProbability(input.enrichment.score),
  };
}

function modelScorer(model: ConversionModel): Scorer {
  const weights = FEATURES.map((name) => model.coefficients[name] ?? 0);
  const encoder = model.encoders.details_length;
  return {
    version: model.version,
    source: "model",
    predict(input) {
      const x = encodeFeatures(input, encoder);
      let logit = model.intercept;
      for (let i = 0; i < weights.length; i++) logit += weights[i]! * x[i]!;
      const p = sigmoid(logit);
      return Number.isFinite(p) ? toProbability(p) : toProbability(input.enrichment.score);
    },
  };
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(root)"} ${issue.message}`)
    .join("; ");
}

function refuse(log: ScoringLog, origin: string, reason: string, context: object = {}): Scorer {
  log.error(
    { model: origin, reason, ...context },
    `conversion model refused (${reason}); pred_prob falls back to the enrichment score`,
  );
  return enrichmentScorer(reason);
}

/**
 * A scorer for a parsed model file. An invalid or weak model is refused: logged once at error with
 * the reason, and the scorer falls back to the enrichment score.
 */
export function loadConversionModel(
  json: unknown,
  log: ScoringLog = console,
  origin = "conversion model",
): Scorer {
  const parsed = ConversionModel.safeParse(json);
  if (!parsed.success) return refuse(log, origin, `invalid model: ${describeIssues(parsed.error)}`);
  const model = parsed.data;
  if (model.metrics.auc < MIN_MODEL_AUC) {
    const reason = `held-out AUC ${model.metrics.auc} is below ${MIN_MODEL_AUC}`;
    return refuse(log, origin, reason, { version: model.version, auc: model.metrics.auc });
  }
  const missing = FEATURES.filter((name) => !model.features.includes(name));
  if (missing.length > 0) {
    log.warn({ model: origin, version: model.version, missing }, "conversion model ignores some features");
  }
  return modelScorer(model);
}

export function loadConversionModelFile(path: string | URL, log: ScoringLog = console): Scorer {
  const origin = path instanceof URL ? path.pathname : path;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    return refuse(log, origin, `cannot read it: ${error instanceof Error ? error.message : String(error)}`);
  }
  return loadConversionModel(json, log, origin);
}

/** The committed model, model/conversion-model.json of this service. Reads the file synchronously. */
export function loadDefaultConversionModel(log: ScoringLog = console): Scorer {
  return loadConversionModelFile(new URL("../../model/conversion-model.json", import.meta.url), log);
}

/**
 * The hour of day (0-23) of `at` in the lead's time zone, or in UTC when it has none or it is not
 * a time zone: when a lead was written matters in the writer's day, not the server's.
 */
export function leadHour(at: Date, timeZone?: string): number {
  if (timeZone !== undefined) {
    try {
      const parts = new Intl.DateTimeFormat("en-US", {
        timeZone,
        hour: "numeric",
        hourCycle: "h23",
      }).formatToParts(at);
      const hour = Number(parts.find((part) => part.type === "hour")?.value);
      if (Number.isInteger(hour)) return hour % 24;
    } catch {
      // Not a time zone: use UTC.
    }
  }
  return at.getUTCHours();
}
