import { type Topology, topology } from "@followup/contracts";
import { flatLineLogger } from "@followup/service-kit";
import { type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { handleOutcome } from "./cancel.js";
import { type ConsumerLoop, startBatchConsumerLoop, startConsumerLoop } from "./consumer.js";
import { handleEnrolment } from "./enrol.js";
import type { SchedulerMetrics } from "./metrics.js";
import { PlanStore } from "./plans.js";
import type { FollowupRule } from "./schedule.js";
import { SequenceCache } from "./sequences.js";
import { handleScoredBatch } from "./timers.js";

export interface SchedulerDeps {
  nc: NatsConnection;
  /** Provisioned already (provisionTopology). */
  topology: Topology;
  rule: FollowupRule;
  metrics: SchedulerMetrics;
  logger: Logger;
  /** lead.scored and lead.outcome events handled at once, per consumer (SCHEDULER_CONCURRENCY). */
  concurrency?: number;
  /**
   * Most lead.scored events scheduled together, their plans and timers in atomic batches
   * (SCHEDULER_BATCH_SIZE); 1 schedules each alone, SCHEDULER_CONCURRENCY at once.
   */
  batchSize?: number;
  /** How long stop() waits for handlers in flight (SCHEDULER_SHUTDOWN_GRACE_MS). */
  shutdownGraceMs?: number;
  now?: () => Date;
}

/**
 * Batches of lead.scored scheduled at once by one copy: three (of SCHEDULER_BATCH_SIZE, 666 by
 * default, so that together they fill the scored durable's max_ack_pending of 2000), so batches
 * are decoded and planned while others' plans and timers commit. A batch waits until it is full
 * while another is in flight (the consumer loop), else it took whatever had arrived when it came
 * free, the batches were small, and scheduling was slower. Each atomic batch costs nats-server a
 * staging directory and its fsyncs whatever its size, so fewer, larger batches are cheaper per
 * lead; the shapes measured, and why this one, are in docs/benchmarks.md ("Larger scheduling
 * batches").
 */
export const SCORED_BATCHES_IN_FLIGHT = 3;

/** SCHEDULER_BATCH_SIZE's default (666): the batches in flight together fill the durable's max_ack_pending. */
export const DEFAULT_SCORED_BATCH_SIZE = Math.floor(
  topology().consumers.scored.maxAckPending / SCORED_BATCHES_IN_FLIGHT,
);

export interface SchedulerHandle {
  /** Stops consuming, lets handlers in flight finish (bounded). Idempotent. Does not close `nc`. */
  stop(): Promise<void>;
}

/**
 * Loads every tenant's sequences (a watch of the bucket, kept up to date), then starts the
 * scheduler's durable consumers, shared by every copy of the service: scored leads are enrolled
 * and become timers, stopping outcomes cancel, enrolments by hand change plans. A timer's expiry
 * marker is the dispatcher's.
 */
export async function startScheduler(deps: SchedulerDeps): Promise<SchedulerHandle> {
  const logger = deps.logger.child({ component: "scheduler" });
  const js = jetstream(deps.nc);
  const jsm = await jetstreamManager(deps.nc);
  const kvm = new Kvm(deps.nc);
  const plansBucket = deps.topology.buckets.plans.bucket;
  const plans = new PlanStore(await kvm.open(plansBucket), js, plansBucket);
  const leads = await kvm.open(deps.topology.buckets.leads.bucket);
  const now = deps.now ?? (() => new Date());
  const sequencesBucket = deps.topology.buckets.sequences.bucket;
  const sequences = await SequenceCache.start(await kvm.open(sequencesBucket), sequencesBucket, jsm, logger);
  const common = { js, jsm, plans, leads, topology: deps.topology, metrics: deps.metrics, now };
  const concurrency = deps.concurrency ?? 64;
  const onInvalid = (consumer: string) => deps.metrics.invalidEvents.inc({ consumer });
  const onRetry = (consumer: string) => deps.metrics.retries.inc({ consumer });

  const loops: ConsumerLoop[] = [];
  const start = async (
    name: "outcomes" | "enrolments",
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
    const batchSize = deps.batchSize ?? DEFAULT_SCORED_BATCH_SIZE;
    const scoredLogger = logger.child({ handler: "scored" });
    const scoredDeps = {
      ...common,
      rule: deps.rule,
      sequences,
      logger: scoredLogger,
      enqueuedLogger: flatLineLogger(scoredLogger),
    };
    loops.push(
      await startBatchConsumerLoop({
        js,
        spec: deps.topology.consumers.scored,
        name: "scored",
        batchSize,
        batches: batchSize === 1 ? concurrency : SCORED_BATCHES_IN_FLIGHT,
        logger,
        onInvalid,
        onRetry,
        handle: (msgs, invalid) => handleScoredBatch(msgs, invalid, scoredDeps),
      }),
    );
    await start("outcomes", concurrency, (msg, log) => handleOutcome(msg, { ...common, logger: log }));
    // One at a time (the durable's max_ack_pending is 1 too): enrolments apply in stream order.
    await start("enrolments", 1, (msg, log) => handleEnrolment(msg, { ...common, sequences, logger: log }));
  } catch (err) {
    await Promise.all(loops.map((loop) => loop.stop(0)));
    sequences.stop();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        await Promise.all(loops.map((loop) => loop.stop(deps.shutdownGraceMs ?? 10_000)));
        sequences.stop();
        logger.info("scheduler_stopped");
      })();
      return stopping;
    },
  };
}
