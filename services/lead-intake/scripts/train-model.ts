/**
 * Trains the conversion model on the synthetic dataset and writes model/conversion-model.json.
 *
 *   npx tsx services/lead-intake/scripts/train-model.ts [--seed 42] [--n 20000] [--out PATH]
 *
 * The dataset is generated in-process from the seed, so the same seed and n give the same
 * coefficients and version (only trained_at differs).
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { MIN_MODEL_AUC } from "../src/scoring/scoring.js";
import { integerOption } from "./cli.js";
import { TRAINING_DEFAULTS, trainConversionModel } from "./training.js";

const { values } = parseArgs({
  options: {
    seed: { type: "string", default: String(TRAINING_DEFAULTS.seed) },
    n: { type: "string", default: String(TRAINING_DEFAULTS.n) },
    out: {
      type: "string",
      default: fileURLToPath(new URL("../model/conversion-model.json", import.meta.url)),
    },
  },
});

/**
 * JSON.stringify(value, null, 2), except that an array that fits on its line is written on one
 * line, as biome formats it: a retrained model passes `biome check` unchanged.
 */
function formatJson(value: unknown, indent = "", prefix = ""): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    const items = value.map((item) => formatJson(item, inner));
    const oneLine = `[${items.join(", ")}]`;
    if (!oneLine.includes("\n") && indent.length + prefix.length + oneLine.length + 1 <= 110) return oneLine;
    return items.length === 0 ? "[]" : `[\n${items.map((item) => inner + item).join(",\n")}\n${indent}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return "{}";
    const lines = entries.map(([key, v]) => {
      const label = `${JSON.stringify(key)}: `;
      return `${inner}${label}${formatJson(v, inner, label)}`;
    });
    return `{\n${lines.join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value);
}

const seed = integerOption("seed", values.seed, 0);
const n = integerOption("n", values.n, 10);
const started = performance.now();
const { model } = trainConversionModel({ seed, n });
writeFileSync(values.out, `${formatJson(model)}\n`);
const m = model.metrics;
console.log(
  `${model.version}: held-out AUC ${m.auc} (ground truth ${m.ground_truth_auc ?? "n/a"}), ` +
    `accuracy ${m.accuracy}, log loss ${m.log_loss}, n_train ${m.n_train}, n_test ${m.n_test}, ` +
    `${Math.round(performance.now() - started)} ms -> ${values.out}`,
);
if (m.auc < MIN_MODEL_AUC) {
  console.error(`AUC ${m.auc} is below ${MIN_MODEL_AUC}: lead-intake will refuse this model`);
  process.exitCode = 1;
}
