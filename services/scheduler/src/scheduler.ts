import type { Topology } from "@followup/contracts";
import { type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { handleOutcome } from "./cancel.js";
import { type ConsumerLoop, startConsumerLoop } from "./consumer.js";
import type { SchedulerMetrics } from "./metrics.js";
import { PlanStore } from "./plans.js";
import type { FollowupRule } from "./schedule.js";
import { handleScored } from "./timers.js";

export interface SchedulerDeps {
  nc: NatsConnection;
  /** Provisioned already (provisionTopology). */
  topology: Topology;
  rule: FollowupRule;
  metrics: SchedulerMetrics;
  logger: Logger;
  /** lead.scored and lead.outcome events handled at once, per consumer (SCHEDULER_CONCURRENCY). */
  concurrency?: number;
  /** How long stop() waits for handlers in flight (SCHEDULER_SHUTDOWN_GRACE_MS). */
  shutdownGraceMs?: number;
  now?: () => Date;
}

export interface SchedulerHandle {
  /** Stops consuming, lets handlers in flight finish (bounded). Idempotent. Does not close `nc`. */
  stop(): Promise<void>;
}

/**
 * Starts the scheduler's two durable consumers, shared by every copy of the service: scored
 * leads become timers, stopping outcomes cancel. A timer's expiry marker is the dispatcher's.
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
  const concurrency = deps.concurrency ?? 64;
  const onInvalid = (consumer: string) => deps.metrics.invalidEvents.inc({ consumer });
  const onRetry = (consumer: string) => deps.metrics.retries.inc({ consumer });

  const loops: ConsumerLoop[] = [];
  const start = async (
    name: "scored" | "outcomes",
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
        logger.info("scheduler_stopped");
      })();
      return stopping;
    },
  };
}
