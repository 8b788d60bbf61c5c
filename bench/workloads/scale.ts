import { execFileSync } from "node:child_process";
import { topology } from "@followup/contracts";
import { provisionTopology } from "@followup/service-kit";
import { withBroker } from "../broker.js";
import { seedScoredLeads } from "../engine/leads.js";
import { addDelayedFollowups, openQueue } from "../peers/bullmq.js";
import { rssBytes } from "../processes.js";
import { STEP_DELAYS_S, schedulingFollowup, startScheduler, waitForScheduled } from "./scheduling.js";
import type { BenchContext, BullmqPeer, RunValues, Workload } from "./workload.js";

/**
 * 6. Scale: a million pending follow-ups (500k leads x 2 steps). For the engine: the time to
 * schedule them (every plan and each lead's first timer stored: waitForScheduled),
 * nats-server's RSS and disk then (the store holds the lead.scored events, the plans and the
 * timers; the leads bucket is left out, as BullMQ's jobs
 * hold no lead records either) and the scheduler's RSS. For each BullMQ peer: the time to add a
 * million delayed jobs and Redis's used_memory once they are in.
 *
 * The time depends on durability, so it is measured twice, in two columns: with an fsync before
 * every acknowledgement (the engine at `sync_interval: always`, BullMQ on Redis with
 * `appendfsync always`) and without (nats-server's lazy default, BullMQ on Redis without
 * persistence). Memory and disk are taken from the durable run: the fsync policy does not change
 * what is held. One run: it takes minutes.
 */
function scaleLeads(ctx: BenchContext): number {
  return ctx.smoke ? 1_000 : 500_000;
}

function diskBytes(dir: string): number {
  try {
    return Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
  } catch {
    return Number.NaN;
  }
}

async function measureEngine(
  ctx: BenchContext,
  syncAlways: boolean,
  createdAtMs: number,
): Promise<Record<string, number>> {
  const leads = scaleLeads(ctx);
  return withBroker(syncAlways, async ({ server, nc, js, jsm }) => {
    const topo = topology();
    await provisionTopology(nc, topo);
    const seedMs = await seedScoredLeads(js, topo, {
      count: leads,
      createdAt: () => new Date(createdAtMs),
      leadRecords: false,
    });
    ctx.log(`  seeded ${leads} leads in ${(seedMs / 1000).toFixed(1)} s`);
    const scheduler = await startScheduler(ctx, server.url);
    try {
      const seconds = (await waitForScheduled(jsm, topo, leads, ctx.smoke ? 30_000 : 3_600_000)) / 1000;
      if (!syncAlways) return { secondsLazy: seconds } as Record<string, number>;
      const natsRss = rssBytes(server.pid);
      return {
        seconds,
        memory: natsRss,
        natsRss,
        disk: diskBytes(server.storeDir),
        serviceRss: scheduler.rssBytes(),
      };
    } finally {
      await scheduler.stop();
    }
  });
}

async function measureBullmq(
  ctx: BenchContext,
  peer: BullmqPeer,
  createdAtMs: number,
): Promise<Record<string, number>> {
  const count = scaleLeads(ctx) * STEP_DELAYS_S.length;
  const redis = await ctx.redis(peer);
  await redis.flush();
  const queue = openQueue(redis.port);
  try {
    await queue.waitUntilReady();
    const ms = await addDelayedFollowups(queue, schedulingFollowup(createdAtMs), count);
    const used = Number((await redis.info("memory")).used_memory);
    const held = { memory: used, redisUsed: used, redisRss: rssBytes(redis.pid) };
    return peer === "bullmqFsync"
      ? { seconds: ms / 1000, ...held, disk: diskBytes(redis.dir) }
      : { secondsLazy: ms / 1000, ...held };
  } finally {
    await queue.close();
    await redis.flush();
  }
}

const mib = (bytes: number | undefined) => `${((bytes ?? Number.NaN) / 2 ** 20).toFixed(0)} MiB`;

export const scale: Workload = {
  name: "scale",
  title: "6. Scale",
  systems: ["engine", "bullmqFsync", "bullmq"],
  metrics: [
    { name: "seconds", label: "time to schedule, fsync before ack", unit: "s", better: "lower" },
    { name: "secondsLazy", label: "time to schedule, no fsync", unit: "s", better: "lower" },
    { name: "memory", label: "memory holding them", unit: "bytes", better: "lower" },
    { name: "natsRss", label: "nats-server RSS", unit: "bytes", better: "lower" },
    { name: "disk", label: "on disk", unit: "bytes", better: "lower" },
    { name: "serviceRss", label: "scheduler RSS", unit: "bytes", better: "lower" },
    { name: "redisUsed", label: "Redis used_memory", unit: "bytes", better: "lower" },
    { name: "redisRss", label: "Redis RSS", unit: "bytes", better: "lower" },
  ],
  describe: (ctx) =>
    `${(scaleLeads(ctx) * 2).toLocaleString("en-US")} pending follow-ups (${scaleLeads(ctx).toLocaleString("en-US")} leads x 2 steps); ` +
    `"fsync before ack": nats-server sync_interval: always, Redis appendfsync always; "no fsync": nats-server's lazy default, Redis without persistence; ` +
    `"memory holding them" is nats-server RSS for the engine and Redis used_memory for BullMQ; "on disk": the nats-server store, or Redis's append-only file`,
  runs: () => 1,
  async run(ctx) {
    const createdAtMs = Date.now();
    const durable = await measureEngine(ctx, true, createdAtMs);
    const lazy = await measureEngine(ctx, false, createdAtMs);
    const values: RunValues = { engine: { ...durable, ...lazy } };
    const e = values.engine!;
    ctx.log(
      `  engine: ${e.seconds!.toFixed(1)} s (sync always), ${e.secondsLazy!.toFixed(1)} s (lazy), nats-server RSS ${mib(e.natsRss)}`,
    );
    for (const peer of ["bullmqFsync", "bullmq"] as const) {
      const v = await measureBullmq(ctx, peer, createdAtMs);
      values[peer] = v;
      ctx.log(
        `  ${peer}: ${(v.seconds ?? v.secondsLazy)!.toFixed(1)} s, Redis used_memory ${mib(v.redisUsed)}`,
      );
    }
    return values;
  },
};
