import { measureIntake } from "./intake.js";
import { measureScheduling } from "./scheduling.js";
import type { BenchContext, RunValues, SystemName, Workload } from "./workload.js";

/**
 * 5. Durability cost: scheduling (1) and intake (4) with nats-server syncing before every
 * acknowledgement (`sync_interval: always`, what the engine ships) and with nats-server's lazy
 * default (fsync every two minutes: acknowledged messages can be lost on power failure). The
 * "always" columns are workloads 1 and 4 of the same bench run when they ran; otherwise this
 * workload measures them too. BullMQ is left out: its Redis runs without persistence either way.
 */
function fromEarlier(
  ctx: BenchContext,
  workload: string,
  system: SystemName,
  metric: string,
): number | undefined {
  return ctx.results.get(workload)?.summary[system]?.[metric];
}

export const durability: Workload = {
  name: "durability",
  title: "5. Durability cost",
  systems: ["engine", "native", "raw", "bare"],
  metrics: [
    { name: "schedAlways", label: "scheduling/s, sync always", unit: "1/s", better: "higher" },
    { name: "schedLazy", label: "scheduling/s, lazy sync", unit: "1/s", better: "higher" },
    { name: "intakeAlways", label: "intake req/s, sync always", unit: "1/s", better: "higher" },
    { name: "intakeLazy", label: "intake req/s, lazy sync", unit: "1/s", better: "higher" },
    { name: "intakeP99Always", label: "intake p99, sync always", unit: "ms", better: "lower" },
    { name: "intakeP99Lazy", label: "intake p99, lazy sync", unit: "ms", better: "lower" },
  ],
  describe: () =>
    "workloads 1 and 4 at their sizes, nats-server with sync_interval: always and with its lazy default",
  async run(ctx) {
    const values: RunValues = {};
    const reused = new Set<string>();
    for (const system of ["engine", "native", "raw"] as const) {
      const lazy = (await measureScheduling(ctx, system, false)).rate!;
      let always = fromEarlier(ctx, "scheduling", system, "rate");
      if (always === undefined) always = (await measureScheduling(ctx, system, true)).rate!;
      else reused.add("scheduling");
      values[system] = { schedAlways: always, schedLazy: lazy };
      ctx.log(`  scheduling ${system}: always ${Math.round(always)}/s, lazy ${Math.round(lazy)}/s`);
    }
    for (const system of ["engine", "bare"] as const) {
      const lazy = await measureIntake(ctx, system, false);
      const earlier = ctx.results.get("intake")?.summary[system];
      const always = earlier?.rps !== undefined ? earlier : await measureIntake(ctx, system, true);
      if (earlier?.rps !== undefined) reused.add("intake");
      values[system] = {
        ...values[system],
        intakeAlways: always.rps!,
        intakeLazy: lazy.rps!,
        intakeP99Always: always.p99!,
        intakeP99Lazy: lazy.p99!,
      };
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
