import { Queue } from "bullmq";
import { followupTail } from "../followups.js";
import type { PeerFollowup } from "./hook-call.js";

/**
 * BullMQ: one delayed job per follow-up, added with `addBulk` in chunks (the way BullMQ
 * recommends adding many jobs), with the follow-up's idempotency key as the job id so that a
 * repeated add is dropped, as the engine's Nats-Msg-Id does. Completed jobs are removed, as the
 * engine's work queue removes delivered follow-ups.
 */
export const BULLMQ_QUEUE = "followups";
export const ADD_BULK_CHUNK = 1000;

export function openQueue(port: number): Queue {
  return new Queue(BULLMQ_QUEUE, { connection: { host: "127.0.0.1", port, maxRetriesPerRequest: null } });
}

/**
 * Adds `count` delayed jobs, `chunk` per addBulk, `parallel` addBulk calls in flight; resolves
 * with the elapsed ms from the first call to the last reply.
 */
export async function addDelayedFollowups(
  queue: Queue,
  followups: (index: number) => PeerFollowup,
  count: number,
  options: { chunk?: number; parallel?: number } = {},
): Promise<number> {
  const chunk = options.chunk ?? ADD_BULK_CHUNK;
  const parallel = options.parallel ?? 2;
  const chunks = Math.ceil(count / chunk);
  const started = performance.now();
  let next = 0;
  const lanes = Array.from({ length: Math.min(parallel, chunks) }, async () => {
    while (next < chunks) {
      const from = next++ * chunk;
      const now = Date.now();
      const jobs = [];
      for (let i = from; i < Math.min(count, from + chunk); i++) {
        const followup = followups(i);
        jobs.push({
          name: "followup",
          data: followup,
          opts: {
            delay: Math.max(0, Date.parse(followup.due_at) - now),
            jobId: followupTail(followup),
            removeOnComplete: true,
            attempts: 8,
            backoff: { type: "exponential", delay: 1000 },
          },
        });
      }
      await queue.addBulk(jobs);
    }
  });
  await Promise.all(lanes);
  return performance.now() - started;
}
