/**
 * Recomputes the conversion projection from the streams and compares it with the `reports`
 * bucket; with --write, replaces the bucket's content with it.
 *
 *   pnpm --filter @followup/reports run rebuild [--write]
 *
 * The NATS_* variables and ATTRIBUTION_WINDOW_DAYS are the service's. Stop the reports copies
 * before --write: a copy writing while the bucket is replaced could have its change overwritten.
 * Exit code 0: the bucket equals the rebuild (or was made equal); 1: it differs (without --write).
 */
import { parseArgs } from "node:util";
import { topology } from "@followup/contracts";
import { commonEnv, connectNats, createLogger, loadConfig, runMain } from "@followup/service-kit";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { attributionWindowMs, reportsEnv } from "./config.js";
import { compareProjections, projectionFromStreams, writeProjection } from "./rebuild.js";
import { ProjectionStore, REPORTS_BUCKET } from "./store.js";

runMain("reports-rebuild", async () => {
  const { values } = parseArgs({ options: { write: { type: "boolean", default: false } } });
  const config = loadConfig({ ...commonEnv, ATTRIBUTION_WINDOW_DAYS: reportsEnv.ATTRIBUTION_WINDOW_DAYS });
  const logger = createLogger({ service: "reports-rebuild", level: config.LOG_LEVEL });
  const nc = await connectNats({ settings: config, name: "reports-rebuild", logger });
  try {
    const jsm = await jetstreamManager(nc);
    const windowMs = attributionWindowMs(config);
    const kv = await new Kvm(nc).open(REPORTS_BUCKET);
    const store = new ProjectionStore({ kv, js: jetstream(nc), jsm, windowMs });
    const rebuilt = await projectionFromStreams(jsm, topology({ replicas: config.NATS_REPLICAS }), windowMs);
    const stored = await store.snapshot();
    const differences = compareProjections(stored, rebuilt);
    if (differences.length === 0) {
      console.log(`the projection equals its rebuild from the streams: ${rebuilt.size} keys`);
    } else if (values.write) {
      const written = await writeProjection(kv, stored, rebuilt);
      console.log(
        `rebuilt the projection from the streams: ${written} of ${rebuilt.size} keys written or deleted`,
      );
    } else {
      console.log(`the projection differs from its rebuild in ${differences.length} keys (first 20):`);
      for (const d of differences.slice(0, 20)) {
        console.log(`  ${d.key}: stored ${JSON.stringify(d.stored)}, rebuilt ${JSON.stringify(d.rebuilt)}`);
      }
      console.log("run with --write (reports stopped) to replace it");
      process.exitCode = 1;
    }
  } finally {
    await nc.drain();
  }
});
