import { readFileSync } from "node:fs";
import type { Enrichment, Intent, Sentiment, Urgency } from "@followup/contracts";
import { describe, expect, it } from "vitest";
import { GENERATOR, generateLeads, mulberry32 } from "../scripts/dataset.js";
import { auc, trainConversionModel } from "../scripts/training.js";
import { baselineScore, enrich } from "../src/scoring/enrichment.js";
import {
  ENRICHMENT_SCORER_VERSION,
  FEATURES,
  leadHour,
  loadConversionModel,
  loadConversionModelFile,
  loadDefaultConversionModel,
  MIN_MODEL_AUC,
  type ScoringLog,
} from "../src/scoring/scoring.js";

type Entry = { context: object; message: string };

function recordingLog(): ScoringLog & { warns: Entry[]; errors: Entry[] } {
  const warns: Entry[] = [];
  const errors: Entry[] = [];
  return {
    warns,
    errors,
    warn: (context, message) => warns.push({ context, message }),
    error: (context, message) => errors.push({ context, message }),
  };
}

const MODEL_URL = new URL("../model/conversion-model.json", import.meta.url);
const committed = JSON.parse(readFileSync(MODEL_URL, "utf8")) as Record<string, unknown> & {
  version: string;
  coefficients: Record<string, number>;
  intercept: number;
  metrics: { auc: number };
  dataset: { seed: number; n: number };
};
const clone = (): Record<string, unknown> => structuredClone(committed);

const HOURS = Array.from({ length: 24 }, (_, h) => h);
const ALEX = "Urgent: Need to book immediately for tomorrow morning. Budget $5000, credit card ready.";
const BOB = "Just browsing, not sure what I want.";

const ENRICHMENTS: Enrichment[] = (["lead_capture", "support", "info"] as Intent[]).flatMap((intent) =>
  (["positive", "negative", "neutral"] as Sentiment[]).flatMap((sentiment) =>
    (["high", "normal"] as Urgency[]).map((urgency) => ({
      intent,
      sentiment,
      urgency,
      score: baselineScore(intent, sentiment, urgency),
    })),
  ),
);

describe("the committed model", () => {
  it("loads as a model, without a warning, with a held-out AUC of at least 0.65", () => {
    const log = recordingLog();
    const scorer = loadDefaultConversionModel(log);
    expect(scorer.source).toBe("model");
    expect(scorer.version).toBe(committed.version);
    expect(scorer.refusal).toBeUndefined();
    expect(committed.metrics.auc).toBeGreaterThanOrEqual(MIN_MODEL_AUC);
    expect(log.errors).toEqual([]);
    expect(log.warns).toEqual([]);
  });

  const scorer = loadDefaultConversionModel(recordingLog());

  it.each(HOURS)("scores Alex Rivera >= 0.70 at %i:00", (hour) => {
    const p = scorer.predict({ enrichment: enrich(ALEX), detailsLength: ALEX.length, hour });
    expect(p).toBeGreaterThanOrEqual(0.7);
  });

  it.each(HOURS)("scores Bob Smith < 0.70 at %i:00", (hour) => {
    const p = scorer.predict({ enrichment: enrich(BOB), detailsLength: BOB.length, hour });
    expect(p).toBeLessThan(0.7);
  });

  it("stays within [0, 1] for every enrichment, extreme lengths and any hour", () => {
    const lengths = [0, 1, 2000, 2001, 1e12, -5, Number.NaN, Number.POSITIVE_INFINITY];
    const hours = [...HOURS, -1, 24, 23.99, 1e12, Number.NaN, Number.NEGATIVE_INFINITY];
    for (const enrichment of ENRICHMENTS) {
      for (const detailsLength of lengths) {
        for (const hour of hours) {
          const p = scorer.predict({ enrichment, detailsLength, hour });
          expect(Number.isFinite(p), JSON.stringify({ enrichment, detailsLength, hour })).toBe(true);
          expect(p).toBeGreaterThanOrEqual(0);
          expect(p).toBeLessThanOrEqual(1);
        }
      }
    }
  });

  it("treats lengths past the details limit as the limit", () => {
    const enrichment = enrich(ALEX);
    const at = (detailsLength: number) => scorer.predict({ enrichment, detailsLength, hour: 10 });
    expect(at(1e9)).toBe(at(2000));
    expect(at(-3)).toBe(at(0));
  });

  it("is what the committed scripts train from the recorded seed and size", () => {
    const { model } = trainConversionModel({ seed: committed.dataset.seed, n: committed.dataset.n });
    expect(model.version, "model/conversion-model.json is stale: rerun scripts/train-model.ts").toBe(
      committed.version,
    );
    for (const name of FEATURES)
      expect(model.coefficients[name]).toBeCloseTo(committed.coefficients[name]!, 5);
    expect(model.intercept).toBeCloseTo(committed.intercept, 5);
  });
});

describe("refusing a model", () => {
  it("refuses a model whose held-out AUC is below 0.65 and falls back to the enrichment score", () => {
    const weak = clone();
    (weak.metrics as { auc: number }).auc = 0.6;
    const log = recordingLog();
    const scorer = loadConversionModel(weak, log);
    expect(scorer.source).toBe("enrichment");
    expect(scorer.version).toBe(ENRICHMENT_SCORER_VERSION);
    expect(scorer.refusal).toMatch(/AUC 0\.6 is below 0\.65/);
    expect(log.errors).toHaveLength(1);
    expect(log.errors[0]!.message).toMatch(/refused.*AUC 0\.6/);
    for (const enrichment of ENRICHMENTS) {
      for (const hour of [0, 12]) {
        expect(scorer.predict({ enrichment, detailsLength: 100, hour })).toBe(enrichment.score);
      }
    }
    expect(log.errors).toHaveLength(1); // once at load, not per prediction
  });

  it("accepts a model at exactly the threshold", () => {
    const edge = clone();
    (edge.metrics as { auc: number }).auc = MIN_MODEL_AUC;
    expect(loadConversionModel(edge, recordingLog()).source).toBe("model");
  });

  const malformed: [string, (m: Record<string, unknown>) => unknown, RegExp][] = [
    ["null", () => null, /\(root\)/],
    ["a string", () => "model", /\(root\)/],
    ["an array", () => [], /\(root\)/],
    ["an empty object", () => ({}), /version/],
    ["no coefficients", (m) => ({ ...m, coefficients: undefined }), /coefficients/],
    [
      "a coefficient that is a string",
      (m) => ({ ...m, coefficients: { ...(m.coefficients as object), "intent=info": "1" } }),
      /coefficients\.intent=info/,
    ],
    [
      "a coefficient missing for a listed feature",
      (m) => {
        const { hour_sin: _, ...rest } = m.coefficients as Record<string, number>;
        return { ...m, coefficients: rest };
      },
      /coefficients\.hour_sin is missing/,
    ],
    [
      "a coefficient for an unlisted feature",
      (m) => ({ ...m, coefficients: { ...(m.coefficients as object), moon_phase: 1 } }),
      /moon_phase is not a listed feature/,
    ],
    [
      "an unknown feature",
      (m) => ({ ...m, features: [...(m.features as string[]), "moon_phase"] }),
      /features\.12/,
    ],
    ["a repeated feature", (m) => ({ ...m, features: [...(m.features as string[]), "hour_sin"] }), /repeat/],
    [
      "a zero std",
      (m) => ({ ...m, encoders: { ...(m.encoders as object), details_length: { mean: 4, std: 0 } } }),
      /details_length\.std/,
    ],
    [
      "an unknown intent in the encoders",
      (m) => ({ ...m, encoders: { ...(m.encoders as object), intent: ["sales"] } }),
      /encoders\.intent/,
    ],
    ["an AUC above 1", (m) => ({ ...m, metrics: { ...(m.metrics as object), auc: 1.5 } }), /metrics\.auc/],
    ["no metrics", (m) => ({ ...m, metrics: undefined }), /metrics/],
    ["a NaN intercept", (m) => ({ ...m, intercept: Number.NaN }), /intercept/],
    [
      "an infinite coefficient",
      (m) => ({
        ...m,
        coefficients: { ...(m.coefficients as object), "intent=info": Number.POSITIVE_INFINITY },
      }),
      /intent=info/,
    ],
    ["a trained_at that is not a date", (m) => ({ ...m, trained_at: "yesterday" }), /trained_at/],
  ];

  it.each(malformed)("refuses %s, naming the field", (_, mutate, reason) => {
    const log = recordingLog();
    const scorer = loadConversionModel(mutate(clone()), log);
    expect(scorer.source).toBe("enrichment");
    expect(scorer.refusal).toMatch(reason);
    expect(log.errors).toHaveLength(1);
    expect(log.errors[0]!.context).toMatchObject({ reason: scorer.refusal });
    expect(scorer.predict({ enrichment: enrich(ALEX), detailsLength: ALEX.length, hour: 3 })).toBe(0.8);
  });

  it("refuses a file it cannot read", () => {
    const log = recordingLog();
    const scorer = loadConversionModelFile("/nonexistent/conversion-model.json", log);
    expect(scorer.source).toBe("enrichment");
    expect(scorer.refusal).toMatch(/cannot read it/);
    expect(log.errors).toHaveLength(1);
  });

  it("warns once about features a model does not use, and uses it", () => {
    const partial = clone();
    const coefficients = { ...(partial.coefficients as Record<string, number>) };
    delete coefficients.hour_sin;
    delete coefficients.hour_cos;
    partial.coefficients = coefficients;
    partial.features = (partial.features as string[]).filter((f) => !f.startsWith("hour_"));
    const log = recordingLog();
    const scorer = loadConversionModel(partial, log);
    expect(scorer.source).toBe("model");
    expect(log.warns).toHaveLength(1);
    expect(log.warns[0]!.context).toMatchObject({ missing: ["hour_sin", "hour_cos"] });
    const at = (hour: number) => scorer.predict({ enrichment: enrich(ALEX), detailsLength: 87, hour });
    expect(at(3)).toBe(at(15));
  });

  it("keeps pred_prob in [0, 1] for a model whose weights overflow", () => {
    const wild = clone();
    wild.coefficients = Object.fromEntries(FEATURES.map((name, i) => [name, i % 2 ? 1e308 : -1e308]));
    const scorer = loadConversionModel(wild, recordingLog());
    expect(scorer.source).toBe("model");
    for (const enrichment of ENRICHMENTS) {
      for (const detailsLength of [0, 2000]) {
        for (const hour of HOURS) {
          const p = scorer.predict({ enrichment, detailsLength, hour });
          expect(p >= 0 && p <= 1, String(p)).toBe(true);
        }
      }
    }
  });
});

describe("leadHour", () => {
  const at = new Date("2026-03-10T23:30:00Z");
  it.each([
    [undefined, 23],
    ["UTC", 23],
    ["Europe/Paris", 0],
    ["America/New_York", 19],
    ["Asia/Kolkata", 5],
    ["Not/AZone", 23],
  ])("in %s is %i", (timeZone, hour) => {
    expect(leadHour(at, timeZone)).toBe(hour);
  });
});

describe("the synthetic dataset", () => {
  it("is the same for the same seed and different for another", () => {
    expect(generateLeads(200, 11)).toEqual(generateLeads(200, 11));
    expect(generateLeads(200, 11)).not.toEqual(generateLeads(200, 12));
    const rng = mulberry32(5);
    for (let i = 0; i < 1000; i++) {
      const u = rng();
      expect(u >= 0 && u < 1).toBe(true);
    }
  });

  it("reads back, through enrich(), as what it was generated as", () => {
    for (const lead of generateLeads(3000, 3)) {
      const { intent, sentiment, urgency } = enrich(lead.details);
      expect({ intent, sentiment, urgency }, lead.details).toEqual({
        intent: lead.generated_as.intent,
        sentiment: lead.generated_as.sentiment,
        urgency: lead.generated_as.urgency,
      });
      expect(lead.hour >= 0 && lead.hour <= 23 && Number.isInteger(lead.hour)).toBe(true);
      expect(lead.details.length).toBeLessThanOrEqual(2000);
    }
  });
});

describe("training", () => {
  it.each([
    [[0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75],
    [[0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1], 1],
    [[0.4, 0.3, 0.2, 0.1], [0, 0, 1, 1], 0],
    [[0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5],
    [[0.2, 0.5, 0.5, 0.9], [0, 0, 1, 1], 0.875],
  ])("auc(%j, %j) is %d (Mann-Whitney, ties count half)", (scores, labels, expected) => {
    expect(auc(scores, labels)).toBeCloseTo(expected, 12);
  });

  it("is deterministic and reaches a held-out AUC of at least 0.65", () => {
    const first = trainConversionModel({ seed: 7, n: 3000 });
    const second = trainConversionModel({ seed: 7, n: 3000 });
    expect(second.model.coefficients).toEqual(first.model.coefficients);
    expect(second.model.intercept).toBe(first.model.intercept);
    expect(second.model.version).toBe(first.model.version);
    expect(second.model.metrics).toEqual(first.model.metrics);
    expect(first.model.metrics.auc).toBeGreaterThanOrEqual(MIN_MODEL_AUC);
    expect(first.model.metrics).toMatchObject({ n_train: 2400, n_test: 600 });
    expect(first.model.dataset).toEqual({ generator: GENERATOR, seed: 7, n: 3000 });
    expect(first.model.training.iterations).toBeLessThan(first.model.training.max_iterations!);

    const other = trainConversionModel({ seed: 8, n: 3000 });
    expect(other.model.coefficients).not.toEqual(first.model.coefficients);

    const log = recordingLog();
    expect(loadConversionModel(first.model, log).source).toBe("model");
    expect(log.errors).toEqual([]);
  });
});
