import { topology } from "@followup/contracts";
import {
  connectNats,
  createLogger,
  createMetricsRegistry,
  onShutdown,
  prepareTopology,
  Readiness,
  runMain,
} from "@followup/service-kit";
import type { NatsConnection } from "@nats-io/transport-node";
import { buildConsole } from "./app.js";
import { loadConsoleConfig } from "./config.js";
import { createConsoleMetrics } from "./metrics.js";

/**
 * Composition root. The pages and the proxy to lead-intake answer at once; the live streams wait
 * for NATS, connected as the console's own identity (it may only tail lead and follow-up subjects).
 */
runMain("console", async () => {
  const config = loadConsoleConfig();
  const logger = createLogger({ service: "console", level: config.LOG_LEVEL });
  const registry = createMetricsRegistry("console");
  const metrics = createConsoleMetrics(registry);
  const readiness = new Readiness();
  readiness.set("nats", false, "connecting");
  readiness.set("topology", false, "waiting for NATS");
  let nc: NatsConnection | undefined;

  const { app, closeStreams } = await buildConsole({
    config,
    logger,
    registry,
    metrics,
    readiness,
    nats: () => nc,
  });
  await app.listen({ host: config.HOST, port: config.PORT });

  onShutdown(logger, async () => {
    closeStreams();
    await app.close();
    await nc?.drain();
  });
  logger.info(
    { port: config.PORT, lead_intake: config.LEAD_INTAKE_URL, reports: config.REPORTS_URL },
    "console_started",
  );

  const connected = await connectNats({ settings: config, name: "console", logger, readiness });
  const topo = topology({ replicas: config.NATS_REPLICAS, queue: config.FOLLOWUP_QUEUE });
  // Nothing to provision of its own: the check says the streams it tails exist.
  await prepareTopology(connected, topo, { identity: "console", provision: config.NATS_PROVISION, logger });
  nc = connected;
  readiness.set("topology", true);
});
