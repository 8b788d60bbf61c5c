import type { Topology } from "@followup/contracts";
import { type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { handleOutcome } from "./cancel.js";
import { type ConsumerLoop, startConsumerLoop } from "./consumer.js";
import { MarkerDeletes } from "./marker-deletes.js";
import { handleTimerMessage } from "./markers.js";
import type { SchedulerMetrics } from "./metrics.js";
import { PlanStore } from "./plans.js";
import type { FollowupRule } from "./schedule.js";
import { handleScored } from "./timers.js";

export interface SchedulerDeps {
  nc: NatsConnection;
  /** Provisioned already (provisionTopology). */
  topology: Topology;
  rule: FollowupRule;
  /** FOLLOWUP_CHANNEL. */
  channel: string;
  metrics: SchedulerMetrics;
  logger: Logger;
  /** lead.scored and lead.outcome events handled at once, per consumer (SCHEDULER_CONCURRENCY). */
  concurrency?: number;
  /** Markers handled (mostly: held until due_at) at once (MARKER_CONCURRENCY). */
  markerConcurrency?: number;
  /** How long stop() waits for handlers in flight (SCHEDULER_SHUTDOWN_GRACE_MS). */
  shutdownGraceMs?: number;
  now?: () => Date;
}

/** How long stop() waits for queued marker deletions once the handlers are done. */
const MARKER_DELETE_GRACE_MS = 5_000;

export interface SchedulerHandle {
  /** Stops consuming, lets handlers in flight finish (bounded). Idempotent. Does not close `nc`. */
  stop(): Promise<void>;
}

/**
 * Starts the scheduler's three durable consumers, shared by every copy of the service:
 * scored leads become timers, expiry markers become due follow-ups, stopping outcomes cancel.
 */
export async function startScheduler(deps: SchedulerDeps): Promise<SchedulerHandle> {
  const logger = deps.logger.child({ component: "scheduler" });
  const js = jetstream(deps.nc);
  const jsm = await jetstreamManager(deps.nc);
  const kvm = new Kvm(deps.nc);
  const plans = new PlanStore(await kvm.open(deps.topology.buckets.plans.bucket));
  const leads = await kvm.open(deps.topology.buckets.leads.bucket);
  const now = deps.now ?? (() => new Date());
  const common = { js, jsm, plans, leads, topology: deps.topology, metrics: deps.metrics, now };
  const markerDeletes = new MarkerDeletes({
    jsm,
    stream: deps.topology.streams.timers.name,
    logger: logger.child({ handler: "markers" }),
  });
  const concurrency = deps.concurrency ?? 64;
  const onInvalid = (consumer: string) => deps.metrics.invalidEvents.inc({ consumer });
  const onRetry = (consumer: string) => deps.metrics.retries.inc({ consumer });

  const loops: ConsumerLoop[] = [];
  const start = async (
    name: "scored" | "markers" | "outcomes",
    concurrency: number,
    handle: (msg: JsMsg, log: Logger) => Promise<void>,
  ) => {
    const handlerLog = logger.child({ handler: name });
    const spec = deps.topology.consumers[name];
    const loop = await startConsumerLoop({
      js,
      spec,
      name,
      concurrency,
      logger,
      onInvalid,
      onRetry,
      handle: (msg) => handle(msg, handlerLog),
    });
    loops.push(loop);
  };
  try {
    await start("scored", concurrency, (msg, log) =>
      handleScored(msg, { ...common, rule: deps.rule, logger: log }),
    );
    await start("markers", deps.markerConcurrency ?? 1000, (msg, log) =>
      handleTimerMessage(msg, { ...common, channel: deps.channel, logger: log, markerDeletes }),
    );
    await start("outcomes", concurrency, (msg, log) => handleOutcome(msg, { ...common, logger: log }));
  } catch (err) {
    await Promise.all(loops.map((loop) => loop.stop(0)));
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        await Promise.all(loops.map((loop) => loop.stop(deps.shutdownGraceMs ?? 10_000)));
        // Markers handled but not yet deleted: a few seconds at most, or they wait for their TTL.
        if (!(await markerDeletes.flush(MARKER_DELETE_GRACE_MS))) {
          logger.warn({ markers: markerDeletes.pending }, "marker_deletes_left_to_their_ttl");
        }
        logger.info("scheduler_stopped");
      })();
      return stopping;
    },
  };
}
