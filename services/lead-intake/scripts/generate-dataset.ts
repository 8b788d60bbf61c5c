/**
 * Writes synthetic labelled leads as JSON lines.
 *
 *   npx tsx services/lead-intake/scripts/generate-dataset.ts [--seed 42] [--n 20000] [--out PATH|-]
 *
 * The default output, services/lead-intake/.data/leads.jsonl, is git-ignored; `--out -` writes to
 * stdout. The same seed and n give the same file.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { integerOption } from "./cli.js";
import { generateLeads } from "./dataset.js";
import { TRAINING_DEFAULTS } from "./training.js";

const { values } = parseArgs({
  options: {
    seed: { type: "string", default: String(TRAINING_DEFAULTS.seed) },
    n: { type: "string", default: String(TRAINING_DEFAULTS.n) },
    out: { type: "string", default: fileURLToPath(new URL("../.data/leads.jsonl", import.meta.url)) },
  },
});

const seed = integerOption("seed", values.seed, 0);
const n = integerOption("n", values.n, 1);
const jsonl = `${generateLeads(n, seed)
  .map((lead) => JSON.stringify(lead))
  .join("\n")}\n`;
if (values.out === "-") {
  process.stdout.write(jsonl);
} else {
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, jsonl);
  console.error(`wrote ${n} leads (seed ${seed}) to ${values.out}`);
}
