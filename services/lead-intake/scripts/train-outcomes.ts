/**
 * Retrains the conversion model from the real outcomes in NATS and promotes it past the guard.
 *
 *   pnpm --filter @followup/lead-intake train:outcomes [--horizon 14d] [--min-labelled 500]
 *                                                      [--test-fraction 0.2] [--dry-run]
 *
 * Run it as the lead-intake identity (its NATS_* variables): it reads the leads bucket and the
 * LEADS stream and writes the models bucket. Exit code 0: promoted (or --dry-run passed the
 * guard); 1: refused by the guard, with the numbers; 3: too few labelled leads, with how many
 * more are needed (the model in use stays, the committed one when nothing was promoted).
 */
import { parseArgs } from "node:util";
import { parseDelay, topology } from "@followup/contracts";
import { commonEnv, connectNats, createLogger, env, loadConfig, runMain } from "@followup/service-kit";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { loadDefaultConversionModel } from "../src/scoring/scoring.js";
import { integerOption } from "./cli.js";
import { trainFromOutcomes } from "./outcome-training.js";

runMain("train:outcomes", async () => {
  const { values } = parseArgs({
    options: {
      horizon: { type: "string", default: "14d" },
      "min-labelled": { type: "string", default: "500" },
      "test-fraction": { type: "string", default: "0.2" },
      "dry-run": { type: "boolean", default: false },
    },
  });
  let horizonMs: number;
  try {
    horizonMs = parseDelay(values.horizon) * 1000;
  } catch (err) {
    console.error(`--horizon must be a delay such as 14d, 36h or 30s: ${(err as Error).message}`);
    process.exit(2);
  }
  const minLabelled = integerOption("min-labelled", values["min-labelled"], 2);
  const testFraction = Number(values["test-fraction"]);
  if (!(testFraction > 0 && testFraction < 1)) {
    console.error(`--test-fraction must be a number between 0 and 1, got "${values["test-fraction"]}"`);
    process.exit(2);
  }
  const config = loadConfig({ ...commonEnv, FOLLOWUP_QUEUE: env.queue() });
  const logger = createLogger({ service: "train-outcomes", level: config.LOG_LEVEL });
  const nc = await connectNats({ settings: config, name: "train-outcomes", logger });
  try {
    const jsm = await jetstreamManager(nc);
    const topo = topology({ replicas: config.NATS_REPLICAS, queue: config.FOLLOWUP_QUEUE });
    const models = await new Kvm(nc).open(topo.buckets.models.bucket);
    const result = await trainFromOutcomes(
      { jsm, models, topology: topo, fallback: loadDefaultConversionModel(logger) },
      { horizonMs, minLabelled, testFraction, dryRun: values["dry-run"], now: new Date() },
    );
    const counts = Object.entries(result.counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    if (result.status === "too_few") {
      console.log(
        `${result.labelled} labelled leads (${counts}); at least ${minLabelled} with both outcomes are needed: ` +
          `${Math.max(1, result.needed)} more. The model in use stays.`,
      );
      process.exitCode = 3;
      return;
    }
    const e = result.evaluation;
    console.log(
      `${result.version}: test AUC ${e.auc}, Brier ${e.brier}, base rate ${e.base_rate}, ` +
        `n_train ${e.n_train}, n_test ${e.n_test} (${counts}); current ${e.current_version}: AUC ${e.current_auc} on the same window`,
    );
    console.log(
      `window: train ${result.window.train_from} .. ${result.window.train_until}, test ${result.window.test_from} .. ${result.window.test_until}`,
    );
    console.log("calibration (decile: n, mean predicted, observed rate):");
    for (const bin of e.calibration)
      console.log(`  ${bin.decile}: ${bin.n}, ${bin.mean_predicted}, ${bin.observed_rate}`);
    if (result.status === "refused") {
      console.log(`refused: ${result.reasons.join("; ")}`);
      process.exitCode = 1;
    } else if (result.status === "dry_run") {
      console.log("passes the guard; --dry-run: not promoted");
    } else {
      console.log(`promoted ${result.version}: every lead-intake copy scores with it from now on`);
    }
  } finally {
    await nc.drain();
  }
});
