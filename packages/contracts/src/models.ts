import { z } from "zod";

/**
 * The model registry (lead-intake's `models` bucket): conversion models trained from outcomes
 * (train:outcomes) and promoted past its guard, each under `version.<version>`, and `current`,
 * which says the version every lead-intake copy scores with and the ones before it.
 */

/** The version a model is stored under: `conversion-lr-<hex>` for trained ones. */
export const ModelVersion = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'");

export const CalibrationBin = z.object({
  /** 1 for the lowest-scored tenth of the test window. */
  decile: z.number().int().min(1).max(10),
  n: z.number().int(),
  mean_predicted: z.number(),
  observed_rate: z.number(),
});
export type CalibrationBin = z.infer<typeof CalibrationBin>;

/** How a model did on the test window (the newest leads), and what it was trained on. */
export const ModelEvaluation = z.looseObject({
  auc: z.number(),
  brier: z.number(),
  base_rate: z.number(),
  n_train: z.number().int(),
  n_test: z.number().int(),
  calibration: z.array(CalibrationBin),
  /** The current model's AUC on the same test window, when there was one to compare with. */
  current_auc: z.number().nullable(),
  current_version: z.string().nullable(),
});
export type ModelEvaluation = z.infer<typeof ModelEvaluation>;

export const TrainingWindow = z.object({
  /** Creation times of the oldest and newest training lead, and of the test window's. */
  train_from: z.iso.datetime(),
  train_until: z.iso.datetime(),
  test_from: z.iso.datetime(),
  test_until: z.iso.datetime(),
  /** The attribution window H the labels were made with. */
  horizon_ms: z.number().int().positive(),
});
export type TrainingWindow = z.infer<typeof TrainingWindow>;

/** `version.<version>`: a promoted model, its file content, its evaluation and its window. */
export const ModelRecord = z
  .looseObject({
    version: ModelVersion,
    /** The model file's content, as services/lead-intake/model/conversion-model.json holds one. */
    model: z.looseObject({ version: ModelVersion }),
    evaluation: ModelEvaluation,
    window: TrainingWindow,
    promoted_at: z.iso.datetime(),
  })
  .meta({ id: "ModelRecord", description: "Value of a promoted model in the models KV bucket" });
export type ModelRecord = z.infer<typeof ModelRecord>;

export const ModelLogEntry = z.object({
  at: z.iso.datetime(),
  action: z.enum(["promoted", "rolled_back"]),
  /** The version that became current; null: the committed model. */
  version: ModelVersion.nullable(),
});
export type ModelLogEntry = z.infer<typeof ModelLogEntry>;

/** The most log entries `current` keeps. */
export const MODEL_LOG_MAX = 50;

/** `current`: the version in use (null: the committed model), the ones before it, and what happened. */
export const ModelPointer = z
  .looseObject({
    version: ModelVersion.nullable(),
    /** The versions that were current before, oldest first: a rollback returns to the last. */
    previous: z.array(ModelVersion.nullable()),
    log: z.array(ModelLogEntry),
  })
  .meta({ id: "ModelPointer", description: "Value of `current` in the models KV bucket" });
export type ModelPointer = z.infer<typeof ModelPointer>;

/** `GET /ops/model`: what is current, what this copy scores with, and the history. */
export const ModelStatus = z
  .object({
    /** The registry's current version; null: the committed model. */
    current: ModelVersion.nullable(),
    /** The version this copy scores with (lead.scored's model_version). */
    serving: z.string(),
    evaluation: ModelEvaluation.nullable(),
    window: TrainingWindow.nullable(),
    previous: z.array(ModelVersion.nullable()),
    log: z.array(ModelLogEntry),
  })
  .meta({ id: "ModelStatus", description: "Body data of GET /ops/model" });
export type ModelStatus = z.infer<typeof ModelStatus>;

/** `POST /ops/model/rollback`: the version left and the one returned to. */
export const ModelRolledBack = z
  .object({ from: ModelVersion.nullable(), to: ModelVersion.nullable() })
  .meta({ id: "ModelRolledBack", description: "Body data of POST /ops/model/rollback" });
export type ModelRolledBack = z.infer<typeof ModelRolledBack>;
