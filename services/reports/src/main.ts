import { topology } from "@followup/contracts";
import {
  ApiKeys,
  connectNats,
  createLogger,
  createMetricsRegistry,
  onShutdown,
  prepareTopology,
  Readiness,
  readConsumerLag,
  runMain,
} from "@followup/service-kit";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { buildReportsApp } from "./app.js";
import { attributionWindowMs, loadReportsConfig } from "./config.js";
import { startProjectionConsumers } from "./consumer.js";
import { createReportsMetrics } from "./metrics.js";
import { ProjectionStore, REPORTS_BUCKET } from "./store.js";

/** Composition root: config, connection, topology, the projection's consumers, the routes, shutdown. No logic. */
runMain("reports", async () => {
  const config = loadReportsConfig();
  const logger = createLogger({ service: "reports", level: config.LOG_LEVEL });
  const registry = createMetricsRegistry("reports");
  const readiness = new Readiness();
  readiness.set("consumer", false, "starting");
  const windowMs = attributionWindowMs(config);

  const nc = await connectNats({ settings: config, name: "reports", logger, readiness });
  const topo = topology({ replicas: config.NATS_REPLICAS, queue: config.FOLLOWUP_QUEUE });
  await prepareTopology(nc, topo, { identity: "reports", provision: config.NATS_PROVISION, logger });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const specs = Object.values(topo.consumers).filter((c) => c.consumedBy === "reports");
  const metrics = createReportsMetrics(registry, { consumerLag: () => readConsumerLag(jsm, specs) });
  const kv = await new Kvm(nc).open(REPORTS_BUCKET);
  const store = new ProjectionStore({ kv, js, jsm, windowMs, logger });

  const app = await buildReportsApp({
    apiKeys: new ApiKeys(config.API_KEYS),
    store: () => store,
    windowMs,
    now: () => new Date(),
    limits: config,
    logger,
    registry,
    readiness,
  });
  await app.listen({ host: config.HOST, port: config.PORT });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.PORT;
  const consumers = await startProjectionConsumers({
    js,
    specs,
    store,
    batchSize: config.REPORTS_BATCH_SIZE,
    metrics,
    readiness,
    logger,
  });

  onShutdown(logger, async () => {
    await app.close();
    await consumers.stop();
    await nc.drain();
  });
  logger.info(
    {
      port,
      api_keys: config.API_KEYS.length,
      attribution_window_days: config.ATTRIBUTION_WINDOW_DAYS,
      batch_size: config.REPORTS_BATCH_SIZE,
      consumers: specs.map((s) => s.durable),
    },
    "reports_started",
  );
});
