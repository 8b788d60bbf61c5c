import { QueueStatus } from "@followup/contracts";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { Broker } from "../broker.js";
import type { AppDeps, LocalOutbox } from "../deps.js";
import { isBrokerError } from "../errors.js";
import { errorResponses, jsonResponse } from "../http/responses.js";

/**
 * The follow-up queue as JetStream holds it, not as any process remembers it: due follow-ups
 * in the work queue, timers not yet expired, dead letters not yet replayed.
 */
export async function queueStatus(
  broker: Broker,
  followupsEnabled: boolean,
  outbox?: LocalOutbox,
): Promise<QueueStatus> {
  const local = outbox ? { outbox: outbox.status() } : {};
  return { ...(await jetStreamQueueStatus(broker, followupsEnabled)), ...local };
}

async function jetStreamQueueStatus(broker: Broker, followupsEnabled: boolean): Promise<QueueStatus> {
  const queue = broker.topology.queue;
  const empty = { queued: 0, scheduled: 0, dead: 0 };
  if (!broker.available) {
    return { enabled: false, queue, jobs: empty, reason: `NATS unreachable: ${broker.reason}` };
  }
  const { jsm, topology } = broker.handles();
  const count = async (stream: string) => (await jsm.streams.info(stream)).state.messages;
  try {
    const [queued, scheduled, dead] = await Promise.all([
      count(topology.streams.followups.name),
      count(topology.streams.timers.name),
      count(topology.streams.dead.name),
    ]);
    const jobs = { queued, scheduled, dead };
    if (!followupsEnabled) {
      return { enabled: false, queue, jobs, reason: "follow-ups are disabled (FOLLOWUP_ENABLED=false)" };
    }
    return { enabled: true, queue, jobs };
  } catch (err) {
    if (!isBrokerError(err)) throw err;
    return {
      enabled: false,
      queue,
      jobs: empty,
      reason: `JetStream did not answer: ${(err as Error).message}`,
    };
  }
}

/** GET /ops/followup/queue: the body of QueueStatus itself (no envelope), as the system it replaces. */
export const queueRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const schema = {
    operationId: "getQueue",
    tags: ["queue"],
    summary: "The follow-up queue",
    description:
      "Due follow-ups, timers not yet expired and dead letters not yet replayed, counted in JetStream, and the " +
      "leads waiting in the local outbox. Not an envelope: the body of the system it replaces. With NATS " +
      "unreachable it still answers 200, with enabled false and the reason.",
    response: {
      200: jsonResponse("The queue as JetStream holds it", QueueStatus),
      ...errorResponses([401, 429, 500]),
    },
  };
  app.get("/ops/followup/queue", { schema }, async () =>
    queueStatus(deps.broker, deps.config.FOLLOWUP_ENABLED, deps.outbox),
  );
};
