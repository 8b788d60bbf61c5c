import { startFollowupHook } from "../hook.js";
import { measureBurst } from "./burst.js";
import { measureIntake } from "./intake.js";
import { measureScheduling } from "./scheduling.js";
import type { BenchContext, RunValues, SystemName, Workload } from "./workload.js";

/**
 * 5. Durability cost: the numbers that durability changes, with an fsync before every
 * acknowledgement and without. For NATS that is `sync_interval: always` (what the engine ships)
 * against nats-server's lazy default (fsync every two minutes: acknowledged messages can be lost
 * on power failure); for BullMQ it is its two peers, Redis with `appendfsync always` and Redis
 * without persistence, each in its own column. Scheduling (1), burst (2) and intake (4): idle
 * precision hardly depends on it, and scale (6) measures both itself.
 *
 * The "always" columns are the medians of workloads 1, 2 and 4 of the same bench run when they
 * ran; otherwise this workload measures them too.
 */
/** The same run's medians of `workload` for `system` (if it measured them), or a fresh measurement. */
async function reuseOr(
  ctx: BenchContext,
  workload: string,
  system: SystemName,
  measure: () => Promise<Record<string, number>>,
  reused: Set<string>,
): Promise<Record<string, number>> {
  const earlier = ctx.results.get(workload)?.summary[system];
  if (earlier && Object.keys(earlier).length > 0) {
    reused.add(workload);
    return earlier;
  }
  return measure();
}

export const durability: Workload = {
  name: "durability",
  title: "5. Durability cost",
  systems: ["engine", "bullmqFsync", "bullmq", "native", "raw", "bare"],
  metrics: [
    { name: "schedAlways", label: "scheduling/s, sync always", unit: "1/s", better: "higher" },
    { name: "schedLazy", label: "scheduling/s, lazy sync", unit: "1/s", better: "higher" },
    { name: "burstP99Always", label: "burst p99, sync always", unit: "ms", better: "lower" },
    { name: "burstP99Lazy", label: "burst p99, lazy sync", unit: "ms", better: "lower" },
    { name: "burstDrainAlways", label: "burst drain, sync always", unit: "s", better: "lower" },
    { name: "burstDrainLazy", label: "burst drain, lazy sync", unit: "s", better: "lower" },
    { name: "intakeAlways", label: "intake req/s, sync always", unit: "1/s", better: "higher" },
    { name: "intakeLazy", label: "intake req/s, lazy sync", unit: "1/s", better: "higher" },
    { name: "intakeP99Always", label: "intake p99, sync always", unit: "ms", better: "lower" },
    { name: "intakeP99Lazy", label: "intake p99, lazy sync", unit: "ms", better: "lower" },
  ],
  describe: () =>
    "workloads 1, 2 and 4 at their sizes; sync always: nats-server sync_interval: always, or BullMQ on Redis with appendfsync always; " +
    "lazy sync: nats-server's lazy default, or BullMQ on Redis without persistence",
  async run(ctx) {
    const values: RunValues = {};
    const reused = new Set<string>();
    const add = (system: SystemName, numbers: Record<string, number>) => {
      values[system] = { ...values[system], ...numbers };
    };

    for (const system of ["engine", "native", "raw"] as const) {
      const always = await reuseOr(
        ctx,
        "scheduling",
        system,
        () => measureScheduling(ctx, system, true),
        reused,
      );
      const lazy = await measureScheduling(ctx, system, false);
      add(system, { schedAlways: always.rate!, schedLazy: lazy.rate! });
      ctx.log(
        `  scheduling ${system}: always ${Math.round(always.rate!)}/s, lazy ${Math.round(lazy.rate!)}/s`,
      );
    }
    for (const [system, column] of [
      ["bullmqFsync", "schedAlways"],
      ["bullmq", "schedLazy"],
    ] as const) {
      const v = await reuseOr(ctx, "scheduling", system, () => measureScheduling(ctx, system, true), reused);
      add(system, { [column]: v.rate! });
    }

    const hook = await startFollowupHook();
    try {
      for (const system of ["engine", "native"] as const) {
        const always = await reuseOr(
          ctx,
          "burst",
          system,
          () => measureBurst(ctx, system, hook, true),
          reused,
        );
        const lazy = await measureBurst(ctx, system, hook, false);
        add(system, {
          burstP99Always: always.p99!,
          burstP99Lazy: lazy.p99!,
          burstDrainAlways: always.drain!,
          burstDrainLazy: lazy.drain!,
        });
        ctx.log(
          `  burst ${system}: p99 always ${Math.round(always.p99!)} ms, lazy ${Math.round(lazy.p99!)} ms`,
        );
      }
      for (const [system, mode] of [
        ["bullmqFsync", "Always"],
        ["bullmq", "Lazy"],
      ] as const) {
        const v = await reuseOr(ctx, "burst", system, () => measureBurst(ctx, system, hook), reused);
        add(system, { [`burstP99${mode}`]: v.p99!, [`burstDrain${mode}`]: v.drain! });
      }
    } finally {
      await hook.close();
    }

    for (const system of ["engine", "bare"] as const) {
      const always = await reuseOr(ctx, "intake", system, () => measureIntake(ctx, system, true), reused);
      const lazy = await measureIntake(ctx, system, false);
      add(system, {
        intakeAlways: always.rps!,
        intakeLazy: lazy.rps!,
        intakeP99Always: always.p99!,
        intakeP99Lazy: lazy.p99!,
      });
      ctx.log(
        `  intake ${system}: always ${Math.round(always.rps!)} req/s, lazy ${Math.round(lazy.rps!)} req/s`,
      );
    }
    for (const workload of reused) {
      ctx.note(`The sync-always ${workload} columns are the medians of that workload in this same run.`);
    }
    return values;
  },
};
