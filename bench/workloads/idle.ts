import { setTimeout as sleep } from "node:timers/promises";
import { topology } from "@followup/contracts";
import { provisionTopology } from "@followup/service-kit";
import type { Queue } from "bullmq";
import { arrivalOffsets } from "../arrivals.js";
import { type Broker, withBroker } from "../broker.js";
import { seedScoredLeads } from "../engine/leads.js";
import { startService } from "../engine/services.js";
import { followupTail, peerFollowup } from "../followups.js";
import { type FollowupHook, startFollowupHook } from "../hook.js";
import { openQueue } from "../peers/bullmq.js";
import { provisionScheduleStream, publishSchedule } from "../peers/native-schedule.js";
import { startBullmqWorker, startNativeConsumer } from "../peers/workers.js";
import { type NodeProcess, startTogether } from "../processes.js";
import { summarizeLateness } from "../stats.js";
import type { BenchContext, BullmqPeer, RunValues, Workload } from "./workload.js";

/**
 * 3. Idle precision: leads arrive one by one at random instants over a minute, each with one
 * follow-up a few seconds later, so due times fall at random sub-second offsets. Lateness per
 * follow-up, and early deliveries (the engine promises none). The systems (BullMQ on both kinds
 * of Redis) run side by side in the same minute, each with its own hook: at a few follow-ups per
 * second in total the machine stays idle, and the run takes one minute instead of four.
 */
function idleShape(ctx: BenchContext) {
  return ctx.smoke ? { count: 10, windowMs: 2_000, delayS: 2 } : { count: 200, windowMs: 60_000, delayS: 5 };
}

/** What each system does when a lead arrives, and how it is torn down. */
interface IdleSystem {
  schedule(index: number): Promise<unknown>;
  stop(): Promise<void>;
}

async function engineSystem(
  ctx: BenchContext,
  broker: Broker,
  hook: FollowupHook,
  delayS: number,
): Promise<IdleSystem> {
  const topo = topology();
  await provisionTopology(broker.nc, topo);
  const env = { natsUrl: broker.server.url, schedules: `${delayS}s`, hookUrl: hook.url };
  const profile = ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {};
  const services: NodeProcess[] = await startTogether([
    startService("scheduler", ctx.engineRoot, env, profile),
    startService("dispatcher", ctx.engineRoot, env, profile),
  ]);
  return {
    // lead-intake stamps created_at when the lead arrives; the follow-up is due delayS later.
    schedule: (index) =>
      seedScoredLeads(broker.js, topo, { count: 1, firstIndex: index, createdAt: () => new Date() }),
    stop: async () => {
      await Promise.all(services.map((s) => s.stop()));
    },
  };
}

async function bullmqSystem(
  ctx: BenchContext,
  peer: BullmqPeer,
  hook: FollowupHook,
  delayS: number,
): Promise<IdleSystem> {
  const redis = await ctx.redis(peer);
  await redis.flush();
  const worker = await startBullmqWorker(ctx.repoRoot, redis.port, hook.url);
  const queue: Queue = openQueue(redis.port);
  await queue.waitUntilReady();
  return {
    schedule: (index) => {
      const followup = peerFollowup(index, 1, delayS, Date.now() + delayS * 1000);
      return queue.add("followup", followup, {
        delay: delayS * 1000,
        jobId: followupTail(followup),
        removeOnComplete: true,
      });
    },
    stop: async () => {
      await queue.close();
      await worker.stop();
    },
  };
}

async function nativeSystem(
  ctx: BenchContext,
  broker: Broker,
  hook: FollowupHook,
  delayS: number,
): Promise<IdleSystem> {
  await provisionScheduleStream(broker.nc);
  const consumer = await startNativeConsumer(ctx.repoRoot, broker.server.url, hook.url);
  return {
    schedule: (index) =>
      publishSchedule(broker.js, peerFollowup(index, 1, delayS, Date.now() + delayS * 1000)),
    stop: () => consumer.stop(),
  };
}

const IDLE_SYSTEMS = ["engine", "bullmqFsync", "bullmq", "native"] as const;
type IdleSystemName = (typeof IDLE_SYSTEMS)[number];

function summarize(hook: FollowupHook): Record<string, number> {
  const s = summarizeLateness(hook.deliveries.map((d) => d.arrivedAtMs - d.dueAtMs));
  return { p50: s.p50, p99: s.p99, max: s.max, early: s.early };
}

export const idle: Workload = {
  name: "idle",
  title: "3. Idle precision",
  systems: IDLE_SYSTEMS,
  metrics: [
    { name: "p50", label: "lateness p50", unit: "ms", better: "lower" },
    { name: "p99", label: "lateness p99", unit: "ms", better: "lower" },
    { name: "max", label: "lateness max", unit: "ms", better: "lower" },
    { name: "early", label: "early deliveries", unit: "count", better: "lower", across: "max" },
  ],
  describe: (ctx) => {
    const { count, windowMs, delayS } = idleShape(ctx);
    return `${count} follow-ups per system, leads arriving at random over ${windowMs / 1000} s, each due ${delayS} s later (random sub-second offsets); the ${IDLE_SYSTEMS.length} systems side by side; sync_interval: always`;
  },
  async run(ctx, runIndex) {
    const { count, windowMs, delayS } = idleShape(ctx);
    const hooks = {} as Record<IdleSystemName, FollowupHook>;
    for (const system of IDLE_SYSTEMS) hooks[system] = await startFollowupHook();
    try {
      return await withBroker(true, (engineBroker) =>
        withBroker(true, async (nativeBroker) => {
          const [engine, bullmqFsync, bullmq, native] = await startTogether([
            engineSystem(ctx, engineBroker, hooks.engine, delayS),
            bullmqSystem(ctx, "bullmqFsync", hooks.bullmqFsync, delayS),
            bullmqSystem(ctx, "bullmq", hooks.bullmq, delayS),
            nativeSystem(ctx, nativeBroker, hooks.native, delayS),
          ]);
          const systems: Record<IdleSystemName, IdleSystem> = {
            engine: engine!,
            bullmqFsync: bullmqFsync!,
            bullmq: bullmq!,
            native: native!,
          };
          try {
            const offsets = arrivalOffsets(count, windowMs, 1000 + runIndex);
            const t0 = performance.now() + 200;
            const scheduled: Promise<unknown>[] = [];
            for (const [index, offset] of offsets.entries()) {
              const wait = t0 + offset - performance.now();
              if (wait > 0) await sleep(wait);
              for (const system of IDLE_SYSTEMS) scheduled.push(systems[system].schedule(index));
            }
            await Promise.all(scheduled);
            const timeoutMs = delayS * 1000 + (ctx.smoke ? 10_000 : 60_000);
            await Promise.all(IDLE_SYSTEMS.map((s) => hooks[s].waitForDeliveries(count, timeoutMs)));
            const values: RunValues = {};
            for (const system of IDLE_SYSTEMS) {
              values[system] = summarize(hooks[system]);
              const v = values[system]!;
              ctx.log(
                `  ${system}: p50 ${v.p50!.toFixed(1)} ms, p99 ${v.p99!.toFixed(1)} ms, max ${v.max!.toFixed(1)} ms, early ${v.early}`,
              );
            }
            return values;
          } finally {
            await Promise.all(Object.values(systems).map((s) => s.stop()));
          }
        }),
      );
    } finally {
      await Promise.all(Object.values(hooks).map((h) => h.close()));
    }
  },
};
