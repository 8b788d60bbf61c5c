import { topology } from "@followup/contracts";
import { provisionTopology } from "@followup/service-kit";
import { serverSpanMs, waitForStreamMessages, withBroker } from "../broker.js";
import { seedScoredLeads } from "../engine/leads.js";
import { startService } from "../engine/services.js";
import { peerFollowup } from "../followups.js";
import { addDelayedFollowups, openQueue } from "../peers/bullmq.js";
import { provisionScheduleStream, publishSchedules } from "../peers/native-schedule.js";
import { provisionRawStream, publishRaw } from "../peers/raw-jetstream.js";
import type { BenchContext, RunValues, SystemName, Workload } from "./workload.js";

/**
 * 1. Scheduling: qualifying leads x 2 steps from `lead.scored` already on the stream until every
 * timer is stored, in follow-ups per second. The engine's clock is the server's: from the first
 * timer stored to the last (both stamped by nats-server), so the scheduler's start-up is not
 * counted. The peers are timed by the bench from the first publish to the last acknowledgement.
 */
export const STEP_DELAYS_S = [3600, 7200];

export function schedulingLeads(ctx: BenchContext): number {
  return ctx.smoke ? 250 : 50_000;
}

const PUBLISH_WINDOW = 2000;

export async function measureScheduling(
  ctx: BenchContext,
  system: SystemName,
  syncAlways: boolean,
  leads = schedulingLeads(ctx),
): Promise<number> {
  const count = leads * STEP_DELAYS_S.length;
  const timeoutMs = ctx.smoke ? 30_000 : Math.max(120_000, count); // >= 1 follow-up per ms
  const createdAtMs = Date.now();
  const followup = (i: number) => {
    const step = (i % STEP_DELAYS_S.length) + 1;
    const delay = STEP_DELAYS_S[step - 1]!;
    return peerFollowup(Math.floor(i / STEP_DELAYS_S.length), step, delay, createdAtMs + delay * 1000);
  };

  if (system === "bullmq") {
    const redis = await ctx.redis();
    await redis.flush();
    const queue = openQueue(redis.port);
    try {
      await queue.waitUntilReady();
      const ms = await addDelayedFollowups(queue, followup, count);
      return (count / ms) * 1000;
    } finally {
      await queue.close();
    }
  }

  return withBroker(syncAlways, async ({ server, nc, js, jsm }) => {
    if (system === "raw") {
      await provisionRawStream(nc);
      return (count / (await publishRaw(js, followup, count, PUBLISH_WINDOW))) * 1000;
    }
    if (system === "native") {
      await provisionScheduleStream(nc);
      return (count / (await publishSchedules(js, followup, count, PUBLISH_WINDOW))) * 1000;
    }
    const topo = topology();
    await provisionTopology(nc, topo);
    await seedScoredLeads(js, topo, { count: leads, createdAt: () => new Date(createdAtMs) });
    const scheduler = await startService(
      "scheduler",
      ctx.repoRoot,
      {
        natsUrl: server.url,
        schedules: STEP_DELAYS_S.map((s) => `${s}s`).join(","),
      },
      ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {},
    );
    try {
      const state = await waitForStreamMessages(jsm, topo.streams.timers.name, count, timeoutMs);
      return ((count - 1) / serverSpanMs(state.first_ts, state.last_ts)) * 1000;
    } finally {
      await scheduler.stop();
    }
  });
}

export const scheduling: Workload = {
  name: "scheduling",
  title: "1. Scheduling",
  systems: ["engine", "bullmq", "native", "raw"],
  metrics: [{ name: "rate", label: "follow-ups/s", unit: "1/s", better: "higher" }],
  describe: (ctx) =>
    `${(schedulingLeads(ctx) * 2).toLocaleString("en-US")} follow-ups (${schedulingLeads(ctx).toLocaleString("en-US")} leads x 2 steps), nats-server sync_interval: always`,
  async run(ctx) {
    const values: RunValues = {};
    for (const system of this.systems) {
      const rate = await measureScheduling(ctx, system, true);
      values[system] = { rate };
      ctx.log(`  ${system}: ${Math.round(rate)} follow-ups/s`);
    }
    return values;
  },
};
