import { execFileSync } from "node:child_process";
import { topology } from "@followup/contracts";
import { provisionTopology } from "@followup/service-kit";
import { serverSpanMs, waitForStreamMessages, withBroker } from "../broker.js";
import { seedScoredLeads } from "../engine/leads.js";
import { startService } from "../engine/services.js";
import { peerFollowup } from "../followups.js";
import { addDelayedFollowups, openQueue } from "../peers/bullmq.js";
import { rssBytes } from "../processes.js";
import { STEP_DELAYS_S } from "./scheduling.js";
import type { BenchContext, RunValues, Workload } from "./workload.js";

/**
 * 6. Scale: a million pending follow-ups (500k leads x 2 steps). For the engine: the time to
 * store every timer, nats-server's RSS and disk once they are stored (the store then holds the
 * lead.scored events, the plans and the timers; the leads bucket is left out, as BullMQ's jobs
 * hold no lead records either) and the scheduler's RSS. For BullMQ: the time to add a million
 * delayed jobs and Redis's used_memory once they are in.
 *
 * nats-server runs with its lazy fsync here: the fsync policy changes how long scheduling takes
 * (workload 1 measures that), not what is held, and a million timers at sync-always speed would
 * take a quarter of an hour. One run: it takes minutes.
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

export const scale: Workload = {
  name: "scale",
  title: "6. Scale",
  systems: ["engine", "bullmq"],
  metrics: [
    { name: "seconds", label: "time to schedule", unit: "s", better: "lower" },
    { name: "memory", label: "memory holding them", unit: "bytes", better: "lower" },
    { name: "natsRss", label: "nats-server RSS", unit: "bytes", better: "lower" },
    { name: "disk", label: "nats-server disk", unit: "bytes", better: "lower" },
    { name: "serviceRss", label: "scheduler RSS", unit: "bytes", better: "lower" },
    { name: "redisUsed", label: "Redis used_memory", unit: "bytes", better: "lower" },
    { name: "redisRss", label: "Redis RSS", unit: "bytes", better: "lower" },
  ],
  describe: (ctx) =>
    `${(scaleLeads(ctx) * 2).toLocaleString("en-US")} pending follow-ups (${scaleLeads(ctx).toLocaleString("en-US")} leads x 2 steps); nats-server with its lazy fsync; "memory holding them" is nats-server RSS for the engine and Redis used_memory for BullMQ`,
  runs: () => 1,
  async run(ctx) {
    const leads = scaleLeads(ctx);
    const count = leads * STEP_DELAYS_S.length;
    const values: RunValues = {};
    const createdAtMs = Date.now();

    values.engine = await withBroker(false, async ({ server, nc, js, jsm }) => {
      const topo = topology();
      await provisionTopology(nc, topo);
      const seedMs = await seedScoredLeads(js, topo, {
        count: leads,
        createdAt: () => new Date(createdAtMs),
      });
      ctx.log(`  seeded ${leads} leads in ${(seedMs / 1000).toFixed(1)} s`);
      const scheduler = await startService(
        "scheduler",
        ctx.engineRoot,
        { natsUrl: server.url, schedules: STEP_DELAYS_S.map((s) => `${s}s`).join(",") },
        ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {},
      );
      try {
        const state = await waitForStreamMessages(
          jsm,
          topo.streams.timers.name,
          count,
          ctx.smoke ? 30_000 : 3_600_000,
        );
        const natsRss = rssBytes(server.pid);
        return {
          seconds: serverSpanMs(state.first_ts, state.last_ts) / 1000,
          memory: natsRss,
          natsRss,
          disk: diskBytes(server.storeDir),
          serviceRss: scheduler.rssBytes(),
        };
      } finally {
        await scheduler.stop();
      }
    });
    ctx.log(
      `  engine: ${values.engine.seconds!.toFixed(1)} s, nats-server RSS ${(values.engine.natsRss! / 2 ** 20).toFixed(0)} MiB`,
    );

    const redis = await ctx.redis();
    await redis.flush();
    const queue = openQueue(redis.port);
    try {
      await queue.waitUntilReady();
      const ms = await addDelayedFollowups(
        queue,
        (i) => {
          const step = (i % 2) + 1;
          const delay = STEP_DELAYS_S[step - 1]!;
          return peerFollowup(Math.floor(i / 2), step, delay, createdAtMs + delay * 1000);
        },
        count,
      );
      const memory = await redis.info("memory");
      const used = Number(memory.used_memory);
      values.bullmq = { seconds: ms / 1000, memory: used, redisUsed: used, redisRss: rssBytes(redis.pid) };
    } finally {
      await queue.close();
      await redis.flush();
    }
    ctx.log(
      `  BullMQ: ${values.bullmq.seconds!.toFixed(1)} s, Redis used_memory ${(values.bullmq.redisUsed! / 2 ** 20).toFixed(0)} MiB`,
    );
    return values;
  },
};
