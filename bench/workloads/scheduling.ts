import { topology } from "@followup/contracts";
import { provisionTopology } from "@followup/service-kit";
import type { JetStreamManager } from "@nats-io/jetstream";
import { serverTimeMs, waitForStreamMessages, withBroker } from "../broker.js";
import { seedScoredLeads } from "../engine/leads.js";
import { type RunningService, startService } from "../engine/services.js";
import { peerFollowup } from "../followups.js";
import { addDelayedFollowups, openQueue } from "../peers/bullmq.js";
import { provisionScheduleStream, publishSchedules } from "../peers/native-schedule.js";
import { provisionRawStream, publishRaw } from "../peers/raw-jetstream.js";
import { cpuMs, ownCpuMs } from "../processes.js";
import {
  type BenchContext,
  isBullmqPeer,
  type Metric,
  type RunValues,
  type SystemName,
  type Workload,
} from "./workload.js";

/**
 * 1. Scheduling: qualifying leads x 2 steps from `lead.scored` already on the stream until every
 * follow-up is durably scheduled, in follow-ups per second: for the engine, every lead's plan
 * and its first timer stored (waitForScheduled); for a peer, every job or message acknowledged.
 * The engine is timed by the server's clock, from the first plan stored to the last message (so
 * the scheduler's start-up is not counted); the peers from their first publish to their last
 * acknowledgement.
 *
 * Besides the rate, the CPU each side spent per 1000 follow-ups: the scheduler (or, for a peer,
 * the bench's publishing client) and the broker (nats-server or redis-server). CPU per follow-up
 * hardly moves with the machine's load, so it is what to compare before and after a fix.
 */
export const STEP_DELAYS_S = [3600, 7200];

export function schedulingLeads(ctx: BenchContext): number {
  return ctx.smoke ? 250 : 50_000;
}

const PUBLISH_WINDOW = 2000;

export const SCHEDULING_METRICS: Metric[] = [
  { name: "rate", label: "follow-ups/s", unit: "1/s", better: "higher" },
  { name: "clientCpu", label: "client CPU ms per 1k", unit: "ms", better: "lower" },
  { name: "serverCpu", label: "broker CPU ms per 1k", unit: "ms", better: "lower" },
];

/** The follow-up `index` of a scheduling workload: lead index/2, step 1 or 2, due from createdAtMs. */
export function schedulingFollowup(createdAtMs: number) {
  return (i: number) => {
    const step = (i % STEP_DELAYS_S.length) + 1;
    const delay = STEP_DELAYS_S[step - 1]!;
    return peerFollowup(Math.floor(i / STEP_DELAYS_S.length), step, delay, createdAtMs + delay * 1000);
  };
}

/** The engine's scheduler with the workload's steps (STEP_DELAYS_S), profiled when asked. */
export function startScheduler(ctx: BenchContext, natsUrl: string): Promise<RunningService> {
  return startService(
    "scheduler",
    ctx.engineRoot,
    { natsUrl, schedules: STEP_DELAYS_S.map((s) => `${s}s`).join(",") },
    ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {},
  );
}

/**
 * Waits until the engine has scheduled `leads` leads: each lead's plan (every step, durable) in
 * the plans bucket and its first step's timer in the timer stream (one timer per lead at a
 * time: the dispatcher stores the next when a step fires). Resolves with the server-clock span
 * from the first of those messages stored to the last, in ms.
 */
export async function waitForScheduled(
  jsm: JetStreamManager,
  topo: ReturnType<typeof topology>,
  leads: number,
  timeoutMs: number,
): Promise<number> {
  const plansStream = `KV_${topo.buckets.plans.bucket}`;
  const [timers, plans] = await Promise.all([
    waitForStreamMessages(jsm, topo.streams.timers.name, leads, timeoutMs),
    waitForStreamMessages(jsm, plansStream, leads, timeoutMs),
  ]);
  const first = Math.min(serverTimeMs(timers.first_ts), serverTimeMs(plans.first_ts));
  const last = Math.max(serverTimeMs(timers.last_ts), serverTimeMs(plans.last_ts));
  return last - first;
}

/** Times `work` and the CPU that the client (this process or `clientPid`) and the broker spent on it. */
async function timed(
  count: number,
  brokerPid: number,
  work: () => Promise<number>,
  clientPid?: number,
): Promise<Record<string, number>> {
  const client = () => (clientPid === undefined ? ownCpuMs() : cpuMs(clientPid));
  const [client0, broker0] = [client(), cpuMs(brokerPid)];
  const ms = await work();
  const perThousand = 1000 / count;
  return {
    rate: (count / ms) * 1000,
    clientCpu: (client() - client0) * perThousand,
    serverCpu: (cpuMs(brokerPid) - broker0) * perThousand,
  };
}

export async function measureScheduling(
  ctx: BenchContext,
  system: SystemName,
  syncAlways: boolean,
  leads = schedulingLeads(ctx),
): Promise<Record<string, number>> {
  const count = leads * STEP_DELAYS_S.length;
  const timeoutMs = ctx.smoke ? 30_000 : Math.max(120_000, count * 5); // >= 200 follow-ups/s
  const createdAtMs = Date.now();
  const followup = schedulingFollowup(createdAtMs);

  if (isBullmqPeer(system)) {
    const redis = await ctx.redis(system);
    await redis.flush();
    const queue = openQueue(redis.port);
    try {
      await queue.waitUntilReady();
      return await timed(count, redis.pid, () => addDelayedFollowups(queue, followup, count));
    } finally {
      await queue.close();
    }
  }

  return withBroker(syncAlways, async ({ server, nc, js, jsm }) => {
    if (system === "raw") {
      await provisionRawStream(nc);
      return timed(count, server.pid, () => publishRaw(js, followup, count, PUBLISH_WINDOW));
    }
    if (system === "native") {
      await provisionScheduleStream(nc);
      return timed(count, server.pid, () => publishSchedules(js, followup, count, PUBLISH_WINDOW));
    }
    const topo = topology();
    await provisionTopology(nc, topo);
    await seedScoredLeads(js, topo, { count: leads, createdAt: () => new Date(createdAtMs) });
    const scheduler = await startScheduler(ctx, server.url);
    try {
      // The scheduler starts consuming while it starts up: the CPU is counted from the first
      // timer on, so that start-up (compiling TypeScript, connecting) is left out.
      await waitForStreamMessages(jsm, `KV_${topo.buckets.plans.bucket}`, 1, timeoutMs, 5);
      return await timed(
        count,
        server.pid,
        () => waitForScheduled(jsm, topo, leads, timeoutMs),
        scheduler.pid,
      );
    } finally {
      await scheduler.stop();
    }
  });
}

export const scheduling: Workload = {
  name: "scheduling",
  title: "1. Scheduling",
  systems: ["engine", "bullmqFsync", "bullmq", "native", "raw"],
  metrics: SCHEDULING_METRICS,
  describe: (ctx) =>
    `${(schedulingLeads(ctx) * 2).toLocaleString("en-US")} follow-ups (${schedulingLeads(ctx).toLocaleString("en-US")} leads x 2 steps), nats-server sync_interval: always; client = the scheduler for the engine, the bench's publisher for a peer; broker = nats-server or redis-server`,
  async run(ctx) {
    const values: RunValues = {};
    for (const system of this.systems) {
      const v = await measureScheduling(ctx, system, true);
      values[system] = v;
      ctx.log(
        `  ${system}: ${Math.round(v.rate!)} follow-ups/s; CPU per 1k: client ${Math.round(v.clientCpu!)} ms, broker ${Math.round(v.serverCpu!)} ms`,
      );
    }
    return values;
  },
};
