/**
 * The peer's side of `burst-cpu.ts`: the bench's burst (N follow-ups due within one second,
 * delivered to the local hook, 32 calls in flight) through BullMQ on Redis with
 * `appendfsync always`, with the drain time and the CPU the BullMQ worker and redis-server spent
 * per 1000 follow-ups from the due second to the last delivery. Run it beside `burst-cpu.ts`,
 * alternating, and read the engine's CPU per follow-up against the budget its peer drains in.
 *
 *   npx tsx bench/probes/burst-cpu-bullmq.ts [count]
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { peerFollowup } from "../followups.js";
import { startFollowupHook } from "../hook.js";
import { addDelayedFollowups, openQueue } from "../peers/bullmq.js";
import { startRedis } from "../peers/redis.js";
import { startBullmqWorker } from "../peers/workers.js";
import { cpuPer1kDuring, cpuSplitMs, ownCpuMs } from "../processes.js";
import { dueAt, dueSecond } from "../workloads/burst.js";

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const count = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 20_000);
if (!Number.isInteger(count) || count < 1 || count > 200_000) {
  console.error("usage: npx tsx bench/probes/burst-cpu-bullmq.ts [count 1-200000]");
  process.exit(2);
}
const DELAY_S = 60;

const redis = await startRedis(REPO_ROOT, "fsync-always");
const hook = await startFollowupHook();
const worker = await startBullmqWorker(REPO_ROOT, redis.port, hook.url);
const queue = openQueue(redis.port);
try {
  const start = dueSecond(10_000 + count / 4);
  await addDelayedFollowups(queue, (i) => peerFollowup(i, 1, DELAY_S, dueAt(start, i, count)), count);
  if (Date.now() > start - 500) throw new Error("the jobs were not all added before the due second");
  await new Promise((r) => setTimeout(r, start - Date.now()));
  const cpu = await cpuPer1kDuring(
    count,
    {
      worker: () => cpuSplitMs(worker.pid),
      redis: () => cpuSplitMs(redis.pid),
      hook: () => ({ user: ownCpuMs(), system: 0 }),
    },
    () => hook.waitForDeliveries(count, 300_000),
  );
  console.log(
    JSON.stringify({
      peer: "bullmqFsync",
      count,
      drainS: (hook.lastArrivalMs - start) / 1000,
      workerCpuPer1k: cpu.worker.all,
      redisCpuPer1k: cpu.redis.all,
      workerSystemPer1k: cpu.worker.system,
      redisSystemPer1k: cpu.redis.system,
      // this process: the hook's server (and the waiting), the same for both probes
      hookCpuPer1k: cpu.hook.all,
      duplicates: hook.duplicates,
    }),
  );
} finally {
  await queue.close();
  await worker.stop();
  await hook.close();
  await redis.stop();
}
