/**
 * Workload 1 (scheduling, sync always) for the engines of several checkouts, each run followed
 * by BullMQ on Redis with `appendfsync always` and by workload 0's atomic-batch ceiling (the
 * same count of timers) in the same minute, the checkouts' order alternating from round to
 * round. Prints one line per run: the engine's rate over the peer's and over the ceiling (the
 * ratios the two scheduling goals read), the three rates, and the scheduler's and nats-server's
 * CPU per 1000 follow-ups. The other peers of the full bench are left out, so a round of two
 * checkouts takes about two minutes instead of five. Read the ratios of runs paired in a round, not their
 * absolute rates, which move by a third within an hour on a shared machine.
 *
 *   npx tsx bench/probes/scheduling-ab.ts <rounds> <checkout> [<checkout>...] [--leads N]
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { withBroker } from "../broker.js";
import { atomicBatchTimerRate } from "../peers/atomic-batch.js";
import { startRedis } from "../peers/redis.js";
import { measureScheduling, STEP_DELAYS_S, schedulingFollowup } from "../workloads/scheduling.js";
import type { BenchContext } from "../workloads/workload.js";

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const args = process.argv.slice(2);
const leadsAt = args.indexOf("--leads");
const leads = leadsAt >= 0 ? Number(args[leadsAt + 1]) : 50_000;
const [rounds, ...roots] = leadsAt >= 0 ? args.filter((_, i) => i !== leadsAt && i !== leadsAt + 1) : args;
if (!Number.isInteger(Number(rounds)) || Number(rounds) < 1 || Number(rounds) > 20 || roots.length === 0) {
  console.error("usage: npx tsx bench/probes/scheduling-ab.ts <rounds 1-20> <checkout>... [--leads N]");
  process.exit(2);
}
if (!Number.isInteger(leads) || leads < 2) {
  console.error(`--leads: expected an integer of at least 2, got ${String(args[leadsAt + 1])}`);
  process.exit(2);
}

const redis = await startRedis(REPO_ROOT, "fsync-always");
const context = (engineRoot: string): BenchContext => ({
  smoke: false,
  repoRoot: REPO_ROOT,
  engineRoot,
  runs: 1,
  log: () => {},
  note: () => {},
  redis: async () => redis,
  results: new Map(),
});
try {
  for (let round = 0; round < Number(rounds); round++) {
    const order = round % 2 === 0 ? roots : [...roots].reverse();
    for (const root of order) {
      const ctx = context(resolve(root));
      const engine = await measureScheduling(ctx, "engine", true, leads);
      const peer = await measureScheduling(ctx, "bullmqFsync", true, leads);
      const ceiling = await withBroker(true, (broker) =>
        atomicBatchTimerRate(broker, schedulingFollowup(Date.now()), leads * STEP_DELAYS_S.length),
      );
      console.log(
        JSON.stringify({
          round,
          checkout: root,
          ratio: Number((engine.rate! / peer.rate!).toFixed(3)),
          ceilingRatio: Number((engine.rate! / ceiling).toFixed(3)),
          engine: Math.round(engine.rate!),
          bullmqFsync: Math.round(peer.rate!),
          atomicBatch: Math.round(ceiling),
          schedulerCpuPer1k: Math.round(engine.clientCpu!),
          natsCpuPer1k: Math.round(engine.serverCpu!),
        }),
      );
    }
  }
} finally {
  await redis.stop();
}
