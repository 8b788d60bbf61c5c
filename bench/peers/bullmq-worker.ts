/**
 * The BullMQ peer's worker, run as its own process like the engine's dispatcher: a BullMQ Worker
 * with HOOK_CONCURRENCY jobs in flight, calling the hook for each due job.
 *
 *   REDIS_PORT=... HOOK_URL=... HOOK_SECRET=whsec_... node --import tsx bench/peers/bullmq-worker.ts
 */
import { Worker } from "bullmq";
import { BULLMQ_QUEUE } from "./bullmq.js";
import { createHookCaller, type PeerFollowup } from "./hook-call.js";

const concurrency = Number(process.env.HOOK_CONCURRENCY ?? 32);
const hook = createHookCaller({
  url: process.env.HOOK_URL ?? "",
  secret: process.env.HOOK_SECRET ?? "",
  connections: concurrency,
});
const worker = new Worker<PeerFollowup>(
  BULLMQ_QUEUE,
  async (job) => {
    await hook.call(job.data, job.attemptsMade + 1);
  },
  {
    connection: { host: "127.0.0.1", port: Number(process.env.REDIS_PORT), maxRetriesPerRequest: null },
    concurrency,
  },
);
worker.on("error", (err) => console.error(`bullmq-worker: ${err.message}`));
await worker.waitUntilReady();
process.once("SIGTERM", () => {
  void worker.close().then(() => hook.close().then(() => process.exit(0)));
});
console.log("bullmq-worker ready");
