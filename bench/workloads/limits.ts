import { withBroker } from "../broker.js";
import { serviceEnvOverrides } from "../engine/services.js";
import { type FollowupHook, startFollowupHook } from "../hook.js";
import { ATOMIC_BATCH_MAX, atomicBatchTimerRate, BATCHES_IN_FLIGHT } from "../peers/atomic-batch.js";
import { BENCH_HOOK_SECRET } from "../peers/hook-call.js";
import { HOOK_CONCURRENCY } from "../peers/workers.js";
import { startNodeProcess } from "../processes.js";
import { ratio } from "../stats.js";
import { burstSize } from "./burst.js";
import { STEP_DELAYS_S, schedulingFollowup, schedulingLeads } from "./scheduling.js";
import {
  type BenchContext,
  type RunValues,
  SYSTEM_LABELS,
  type SystemName,
  type Workload,
  type WorkloadResult,
} from "./workload.js";

/** The dispatcher's calls in flight: its default, or what BENCH_SERVICE_ENV gives it. */
function hookConcurrency(): number {
  return Number(serviceEnvOverrides().HOOK_CONCURRENCY ?? HOOK_CONCURRENCY);
}

function fsyncSeconds(ctx: BenchContext): number {
  return ctx.smoke ? 0.3 : 3;
}

/** Runs one of bench/probes as its own process; resolves with the numbers of its result line. */
async function probe(
  ctx: BenchContext,
  name: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<[number, number]> {
  const line = new RegExp(`^${name} (\\d+) in ([\\d.]+) ms$`);
  const child = await startNodeProcess({
    name,
    repoRoot: ctx.repoRoot,
    script: `bench/probes/${name}.ts`,
    env,
    ready: { line },
    readyTimeoutMs: timeoutMs,
  });
  try {
    const match = child
      .output()
      .map((l) => line.exec(l))
      .find((m) => m !== null);
    if (!match) throw new Error(`${name} printed no result line`);
    return [Number(match[1]), Number(match[2])];
  } finally {
    await child.stop();
  }
}

async function hookDrain(
  ctx: BenchContext,
  hook: FollowupHook,
): Promise<{ hookDrain: number; hookRate: number }> {
  const count = burstSize(ctx);
  const [calls, ms] = await probe(
    ctx,
    "hook-calls",
    {
      HOOK_URL: hook.url,
      HOOK_SECRET: BENCH_HOOK_SECRET,
      HOOK_CONCURRENCY: String(hookConcurrency()),
      HOOK_CALLS: String(count),
    },
    ctx.smoke ? 30_000 : 300_000,
  );
  if (hook.deliveries.length !== count)
    throw new Error(`hook-calls: ${hook.deliveries.length} of ${count} arrived`);
  return { hookDrain: ms / 1000, hookRate: (calls / ms) * 1000 };
}

/**
 * 0. Physical limits: the ceilings of this machine that the other tables are read against.
 *
 * - fsyncs per second of the disk that holds the nats-server store, one writer (a small
 *   write+fsync loop in a store directory): at `sync_interval: always` a design that stores one
 *   message per follow-up cannot go faster.
 * - timers per second through atomic batches (ADR-50) at `sync_interval: always`: the ceiling of
 *   scheduling with batches (workload 1's size, batches of 1000).
 * - the time of the burst's hook calls alone (workload 2's count, the dispatcher's concurrency,
 *   to the bench's hook receiver on loopback): no system can drain the burst faster.
 */
export const limits: Workload = {
  name: "limits",
  title: "0. Physical limits",
  systems: ["machine"],
  metrics: [
    { name: "fsyncRate", label: "disk fsyncs/s, one writer", unit: "1/s", better: "higher" },
    { name: "batchRate", label: "atomic-batch timers/s, sync always", unit: "1/s", better: "higher" },
    { name: "hookDrain", label: "hook calls only: time to drain", unit: "s", better: "lower" },
    { name: "hookRate", label: "hook calls/s", unit: "1/s", better: "higher" },
  ],
  describe: (ctx) =>
    `write (256 B) + fsync loop for ${fsyncSeconds(ctx)} s in a nats-server store directory; ` +
    `${(schedulingLeads(ctx) * STEP_DELAYS_S.length).toLocaleString("en-US")} Nats-TTL timers on their own subjects ` +
    `in atomic batches of ${ATOMIC_BATCH_MAX} (${BATCHES_IN_FLIGHT} in flight), sync_interval: always; ` +
    `${burstSize(ctx).toLocaleString("en-US")} hook calls, ${hookConcurrency()} in flight (the dispatcher's), to the bench's hook on loopback`,
  async run(ctx) {
    const machine = await withBroker(true, async (broker) => {
      const [fsyncs, ms] = await probe(
        ctx,
        "fsync-rate",
        { FSYNC_PROBE_DIR: broker.server.storeDir, FSYNC_PROBE_SECONDS: String(fsyncSeconds(ctx)) },
        fsyncSeconds(ctx) * 1000 + 30_000,
      );
      const count = schedulingLeads(ctx) * STEP_DELAYS_S.length;
      const batchRate = await atomicBatchTimerRate(broker, schedulingFollowup(Date.now()), count);
      return { fsyncRate: (fsyncs / ms) * 1000, batchRate };
    });
    const hook = await startFollowupHook();
    try {
      const values: RunValues = { machine: { ...machine, ...(await hookDrain(ctx, hook)) } };
      const v = values.machine!;
      ctx.log(
        `  ${Math.round(v.fsyncRate!)} fsyncs/s; ${Math.round(v.batchRate!)} atomic-batch timers/s; hook calls only: ${v.hookDrain!.toFixed(2)} s (${Math.round(v.hookRate!)}/s)`,
      );
      return values;
    } finally {
      await hook.close();
    }
  },
};

/**
 * Notes that put a workload's figures beside this run's ceilings ("0. Physical limits"), as
 * [workload, note] pairs; none for a workload or a limit that was not measured.
 */
export function ceilingNotes(results: ReadonlyMap<string, WorkloadResult>): [string, string][] {
  const machine = results.get("limits")?.summary.machine;
  if (!machine) return [];
  const times = (value: number | undefined, ceiling: number | undefined) => {
    const r = ratio(value ?? Number.NaN, ceiling ?? Number.NaN);
    return Number.isFinite(r) ? `${r.toFixed(2)}×` : "—";
  };
  const perSecond = (n: number | undefined) => `${Math.round(n ?? Number.NaN).toLocaleString("en-US")}/s`;
  const notes: [string, string][] = [];
  const scheduling = results.get("scheduling")?.summary;
  if (scheduling && machine.batchRate !== undefined && machine.fsyncRate !== undefined) {
    const of = (system: SystemName) =>
      `${SYSTEM_LABELS[system]} ${times(scheduling[system]?.rate, machine.batchRate)} and ${times(scheduling[system]?.rate, machine.fsyncRate)}`;
    notes.push([
      "scheduling",
      `Against this run's ceilings (0. Physical limits): atomic-batch timers ${perSecond(machine.batchRate)}, and one fsync per stored follow-up ${perSecond(machine.fsyncRate)} (the disk's fsyncs/s, one writer); each system's rate is (of the one, and of the other) ${(["engine", "native", "raw"] as const).map(of).join("; ")}.`,
    ]);
  }
  const burst = results.get("burst")?.summary;
  if (burst && machine.hookDrain !== undefined) {
    const of = (system: SystemName) =>
      `${SYSTEM_LABELS[system]} ${times(burst[system]?.drain, machine.hookDrain)}`;
    notes.push([
      "burst",
      `Against this run's ceiling (0. Physical limits): the hook calls alone drain in ${machine.hookDrain.toFixed(2)} s; each system's drain is ${results
        .get("burst")!
        .systems.map(of)
        .join(", ")} that.`,
    ]);
  }
  return notes;
}
