import { topology } from "@followup/contracts";
import {
  connectNats,
  createLogger,
  createMetricsRegistry,
  onShutdown,
  prepareTopology,
  Readiness,
  readConsumerLag,
  runMain,
  startHealthServer,
} from "@followup/service-kit";
import { jetstreamManager } from "@nats-io/jetstream";
import { loadSchedulerConfig } from "./config.js";
import { createSchedulerMetrics } from "./metrics.js";
import { startScheduler } from "./scheduler.js";
import { countPendingTimers } from "./timers.js";

/** Composition root: config, connection, topology, consumers, health, shutdown. No logic. */
runMain("scheduler", async () => {
  const config = loadSchedulerConfig();
  const logger = createLogger({ service: "scheduler", level: config.LOG_LEVEL });
  const registry = createMetricsRegistry("scheduler");
  const readiness = new Readiness();
  readiness.set("streams", false, "provisioning");
  readiness.set("consumers", false, "starting");

  const nc = await connectNats({ settings: config, name: "scheduler", logger, readiness });
  const topo = topology({ replicas: config.NATS_REPLICAS, queue: config.FOLLOWUP_QUEUE });
  await prepareTopology(nc, topo, { identity: "scheduler", provision: config.NATS_PROVISION, logger });
  readiness.set("streams", true);

  const jsm = await jetstreamManager(nc);
  const consumers = Object.values(topo.consumers).filter((c) => c.consumedBy === "scheduler");
  const metrics = createSchedulerMetrics(registry, {
    timersPending: () => countPendingTimers(jsm, topo),
    consumerLag: () => readConsumerLag(jsm, consumers),
  });
  const scheduler = await startScheduler({
    nc,
    topology: topo,
    rule: {
      enabled: config.FOLLOWUP_ENABLED,
      topP: config.FOLLOWUP_RULE_TOP_P,
      delays: config.FOLLOWUP_SCHEDULES,
    },
    metrics,
    logger,
    concurrency: config.SCHEDULER_CONCURRENCY,
    batchSize: config.SCHEDULER_BATCH_SIZE,
    shutdownGraceMs: config.SCHEDULER_SHUTDOWN_GRACE_MS,
  });
  readiness.set("consumers", true);
  const health = await startHealthServer({
    port: config.PORT,
    host: config.HOST,
    registry,
    readiness,
    logger,
    limits: config,
  });

  onShutdown(
    logger,
    async () => {
      readiness.set("consumers", false, "stopping");
      await scheduler.stop();
      await health.app.close();
      await nc.drain();
    },
    { timeoutMs: config.SCHEDULER_SHUTDOWN_GRACE_MS + 15_000 },
  );

  logger.info(
    {
      enabled: config.FOLLOWUP_ENABLED,
      top_p: config.FOLLOWUP_RULE_TOP_P,
      schedules_s: config.FOLLOWUP_SCHEDULES,
      queue: topo.queue,
      replicas: config.NATS_REPLICAS,
      concurrency: config.SCHEDULER_CONCURRENCY,
      batch_size: config.SCHEDULER_BATCH_SIZE,
      port: health.port,
    },
    "scheduler_started",
  );
});
