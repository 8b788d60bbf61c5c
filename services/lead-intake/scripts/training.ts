import { createHash } from "node:crypto";
import { enrich } from "../src/scoring/enrichment.js";
import {
  type ConversionModel,
  type DetailsLengthEncoder,
  encodeFeatures,
  FEATURES,
  sigmoid,
} from "../src/scoring/scoring.js";
import { GENERATOR, type GeneratedLead, generateLeads, mulberry32 } from "./dataset.js";

/**
 * Logistic regression by batch gradient descent with L2, in plain TypeScript. Everything here is
 * deterministic: the same leads and options give the same coefficients, bit for bit, and the
 * descent runs to convergence, so they are the one L2 optimum rather than wherever it stopped.
 */

export type TrainingOptions = {
  seed: number;
  n: number;
  testFraction: number;
  /** L2 penalty on the weights (not the intercept); it also makes the collinear one-hots unique. */
  l2: number;
  learningRate: number;
  /** At most this many descent steps. */
  iterations: number;
};

export const TRAINING_DEFAULTS: TrainingOptions = {
  seed: 42,
  n: 20_000,
  testFraction: 0.2,
  l2: 1e-3,
  learningRate: 1,
  iterations: 5000,
};

export type LabelledLead = Pick<GeneratedLead, "details" | "hour" | "converted"> &
  Partial<Pick<GeneratedLead, "generated_as">>;

/** A seeded shuffle, then the first `testFraction` of rows are held out. */
export function splitHoldout<T>(
  rows: readonly T[],
  seed: number,
  testFraction: number,
): { train: T[]; test: T[] } {
  // A stream of its own, so the split does not replay the generator's draws.
  const rng = mulberry32(seed ^ 0x5bd1e995);
  const order = rows.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const nTest = Math.round(rows.length * testFraction);
  return {
    test: order.slice(0, nTest).map((i) => rows[i]!),
    train: order.slice(nTest).map((i) => rows[i]!),
  };
}

export function detailsLengthEncoder(leads: readonly LabelledLead[]): DetailsLengthEncoder {
  const logs = leads.map((lead) => Math.log1p(lead.details.length));
  const mean = logs.reduce((sum, v) => sum + v, 0) / Math.max(1, logs.length);
  const variance = logs.reduce((sum, v) => sum + (v - mean) ** 2, 0) / Math.max(1, logs.length);
  const std = Math.sqrt(variance);
  return { mean, std: std > 1e-9 ? std : 1 };
}

/** Row-major feature matrix, FEATURES order. */
export function featureMatrix(leads: readonly LabelledLead[], encoder: DetailsLengthEncoder): Float64Array {
  const x = new Float64Array(leads.length * FEATURES.length);
  leads.forEach((lead, i) => {
    const row = encodeFeatures(
      { enrichment: enrich(lead.details), detailsLength: lead.details.length, hour: lead.hour },
      encoder,
    );
    x.set(row, i * FEATURES.length);
  });
  return x;
}

export type LogisticFit = { weights: number[]; intercept: number; iterations: number; trainLogLoss: number };

/**
 * Minimises mean log loss + l2/2 * |w|^2 by batch gradient descent with Nesterov momentum. The
 * one-hot groups and the enrichment score are collinear with the intercept, so along those
 * directions only the small L2 term curves the loss; plain descent would crawl there for tens of
 * thousands of steps, momentum tuned to that curvature gets there in about a thousand. Stops when
 * no gradient component exceeds `tolerance`, or after `iterations` steps.
 */
export function fitLogistic(
  x: Float64Array,
  y: readonly number[],
  options: Pick<TrainingOptions, "l2" | "learningRate" | "iterations"> & { tolerance?: number },
): LogisticFit {
  const n = y.length;
  const d = x.length / Math.max(1, n);
  const tolerance = options.tolerance ?? 1e-7;
  // Parameters: d weights, then the intercept (not penalised).
  let theta = new Float64Array(d + 1);
  let previous = new Float64Array(d + 1);
  const lookahead = new Float64Array(d + 1);
  const grad = new Float64Array(d + 1);
  const rootCurvature = Math.sqrt(options.l2 * options.learningRate);
  const momentum = (1 - rootCurvature) / (1 + rootCurvature);
  let iteration = 0;
  while (iteration < options.iterations) {
    iteration++;
    for (let j = 0; j <= d; j++) lookahead[j] = theta[j]! + momentum * (theta[j]! - previous[j]!);
    grad.fill(0);
    for (let i = 0; i < n; i++) {
      const offset = i * d;
      let logit = lookahead[d]!;
      for (let j = 0; j < d; j++) logit += lookahead[j]! * x[offset + j]!;
      const residual = sigmoid(logit) - y[i]!;
      for (let j = 0; j < d; j++) grad[j]! += residual * x[offset + j]!;
      grad[d]! += residual;
    }
    let largest = 0;
    for (let j = 0; j <= d; j++) {
      grad[j] = grad[j]! / n + (j < d ? options.l2 * lookahead[j]! : 0);
      largest = Math.max(largest, Math.abs(grad[j]!));
    }
    [previous, theta] = [theta, previous];
    for (let j = 0; j <= d; j++) theta[j] = lookahead[j]! - options.learningRate * grad[j]!;
    if (largest < tolerance) break;
  }
  const weights = Array.from(theta.subarray(0, d));
  const intercept = theta[d]!;
  return {
    weights,
    intercept,
    iterations: iteration,
    trainLogLoss: logLoss(predictAll(x, weights, intercept), y),
  };
}

export function predictAll(x: Float64Array, weights: readonly number[], intercept: number): number[] {
  const d = weights.length;
  const n = x.length / d;
  const p = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let logit = intercept;
    for (let j = 0; j < d; j++) logit += weights[j]! * x[i * d + j]!;
    p[i] = sigmoid(logit);
  }
  return p;
}

/**
 * Area under the ROC curve by the rank (Mann-Whitney U) formula: the probability that a random
 * converted lead scores above a random non-converted one; ties get average ranks (count half).
 */
export function auc(scores: readonly number[], labels: readonly number[]): number {
  const order = scores.map((_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  const ranks = new Array<number>(scores.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end < order.length && scores[order[end]!] === scores[order[start]!]) end++;
    const averageRank = (start + 1 + end) / 2; // ranks are 1-based: start+1 .. end
    for (let k = start; k < end; k++) ranks[order[k]!] = averageRank;
    start = end;
  }
  let positives = 0;
  let rankSum = 0;
  labels.forEach((label, i) => {
    if (label === 1) {
      positives++;
      rankSum += ranks[i]!;
    }
  });
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export function logLoss(p: readonly number[], y: readonly number[]): number {
  const eps = 1e-15;
  let sum = 0;
  p.forEach((value, i) => {
    const q = Math.min(1 - eps, Math.max(eps, value));
    sum += y[i] === 1 ? -Math.log(q) : -Math.log(1 - q);
  });
  return sum / Math.max(1, p.length);
}

export function accuracy(p: readonly number[], y: readonly number[], threshold = 0.5): number {
  let correct = 0;
  p.forEach((value, i) => {
    if ((value >= threshold ? 1 : 0) === y[i]) correct++;
  });
  return correct / Math.max(1, p.length);
}

const round = (value: number, digits: number) => Number(value.toFixed(digits));

export type TrainingResult = {
  model: ConversionModel & { training: Record<string, number> };
  /** Held-out predictions, for callers that want more metrics. */
  heldOut: { p: number[]; y: number[] };
};

/** Trains on `leads` (80/20 seeded split by default) and builds the model file's content. */
export function trainOnLeads(
  leads: readonly LabelledLead[],
  options: Partial<TrainingOptions> = {},
  dataset: { generator: string; seed: number; n: number } = {
    generator: GENERATOR,
    seed: options.seed ?? TRAINING_DEFAULTS.seed,
    n: leads.length,
  },
): TrainingResult {
  const opts = { ...TRAINING_DEFAULTS, ...options };
  const { train, test } = splitHoldout(leads, opts.seed, opts.testFraction);
  return trainOnSplit(train, test, opts, dataset);
}

/**
 * Trains on `train`, evaluates on `test` and builds the model file's content: the split is the
 * caller's (a seeded shuffle above; by time for models trained from outcomes).
 */
export function trainOnSplit(
  train: readonly LabelledLead[],
  test: readonly LabelledLead[],
  options: Partial<TrainingOptions>,
  dataset: { generator: string; seed: number; n: number },
): TrainingResult {
  const opts = { ...TRAINING_DEFAULTS, ...options };
  const encoder = detailsLengthEncoder(train);
  const yTrain = train.map((lead) => lead.converted);
  const yTest = test.map((lead) => lead.converted);
  const fit = fitLogistic(featureMatrix(train, encoder), yTrain, opts);
  const weights = fit.weights.map((w) => round(w, 6));
  const intercept = round(fit.intercept, 6);
  const pTest = predictAll(featureMatrix(test, encoder), weights, intercept);
  const coefficients = Object.fromEntries(FEATURES.map((name, j) => [name, weights[j]!]));
  const encoders = {
    intent: ["lead_capture", "support", "info"] as ConversionModel["encoders"]["intent"],
    sentiment: ["positive", "negative", "neutral"] as ConversionModel["encoders"]["sentiment"],
    urgency: ["high", "normal"] as ConversionModel["encoders"]["urgency"],
    details_length: { mean: round(encoder.mean, 6), std: round(encoder.std, 6) },
  };
  // The version names the content, so the same training gives the same version.
  const digest = createHash("sha256")
    .update(JSON.stringify({ features: FEATURES, encoders, coefficients, intercept }))
    .digest("hex");
  const truth = test.map((lead) => lead.generated_as?.p);
  const groundTruthAuc = truth.every((p) => p !== undefined) ? auc(truth, yTest) : undefined;
  const model = {
    version: `conversion-lr-${digest.slice(0, 12)}`,
    trained_at: new Date().toISOString(),
    features: [...FEATURES],
    encoders,
    coefficients,
    intercept,
    metrics: {
      auc: round(auc(pTest, yTest), 4),
      accuracy: round(accuracy(pTest, yTest), 4),
      log_loss: round(logLoss(pTest, yTest), 4),
      train_log_loss: round(fit.trainLogLoss, 4),
      base_rate: round(yTest.reduce<number>((sum, v) => sum + v, 0) / Math.max(1, yTest.length), 4),
      ...(groundTruthAuc === undefined ? {} : { ground_truth_auc: round(groundTruthAuc, 4) }),
      n_train: train.length,
      n_test: test.length,
    },
    dataset,
    training: {
      l2: opts.l2,
      learning_rate: opts.learningRate,
      max_iterations: opts.iterations,
      iterations: fit.iterations,
      test_fraction: opts.testFraction,
    },
  };
  return { model, heldOut: { p: pTest, y: yTest } };
}

/** Generates the synthetic dataset for `seed` and `n` in-process and trains on it. */
export function trainConversionModel(options: Partial<TrainingOptions> = {}): TrainingResult {
  const opts = { ...TRAINING_DEFAULTS, ...options };
  const leads = generateLeads(opts.n, opts.seed);
  return trainOnLeads(leads, opts, { generator: GENERATOR, seed: opts.seed, n: opts.n });
}
