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
import { cpuSplitMs, ownCpuMs } from "../processes.js";

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
  const start = Math.ceil((Date.now() + 10_000 + count / 4) / 1000) * 1000;
  await addDelayedFollowups(
    queue,
    (i) => peerFollowup(i, 1, DELAY_S, start + Math.floor((i * 1000) / count)),
    count,
  );
  if (Date.now() > start - 500) throw new Error("the jobs were not all added before the due second");
  await new Promise((r) => setTimeout(r, start - Date.now()));
  const before = { worker: cpuSplitMs(worker.pid), redis: cpuSplitMs(redis.pid), hook: ownCpuMs() };
  await hook.waitForDeliveries(count, 300_000);
  const after = { worker: cpuSplitMs(worker.pid), redis: cpuSplitMs(redis.pid), hook: ownCpuMs() };
  const last = hook.deliveries.reduce((latest, d) => Math.max(latest, d.arrivedAtMs), 0);
  const per1k = (ms: number) => Math.round((ms * 1000) / count);
  const spent = (who: "worker" | "redis") => ({
    user: after[who].user - before[who].user,
    system: after[who].system - before[who].system,
  });
  const [w, r] = [spent("worker"), spent("redis")];
  console.log(
    JSON.stringify({
      peer: "bullmqFsync",
      count,
      drainS: (last - start) / 1000,
      workerCpuPer1k: per1k(w.user + w.system),
      redisCpuPer1k: per1k(r.user + r.system),
      workerSystemPer1k: per1k(w.system),
      redisSystemPer1k: per1k(r.system),
      // this process: the hook's server (and the waiting), the same for both probes
      hookCpuPer1k: per1k(after.hook - before.hook),
      duplicates: hook.duplicates,
    }),
  );
} finally {
  await queue.close();
  await worker.stop();
  await hook.close();
  await redis.stop();
}
