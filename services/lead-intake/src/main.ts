import { topology } from "@followup/contracts";
import {
  backoffDelayMs,
  ConfigError,
  connectNats,
  createLogger,
  createMetricsRegistry,
  onShutdown,
  pause,
  prepareTopology,
  Readiness,
  runMain,
} from "@followup/service-kit";
import type { NatsConnection } from "@nats-io/transport-node";
import { buildApp } from "./app.js";
import { ApiKeys } from "./auth.js";
import { Broker } from "./broker.js";
import { channelSecretsOf, type LeadIntakeConfig, loadLeadIntakeConfig, outboxDirOf } from "./config.js";
import { JetStreamPublisher } from "./leads/index.js";
import { createLeadIntakeMetrics } from "./metrics.js";
import { LiveScorer, ModelRegistry, watchCurrentModel } from "./models/index.js";
import { LeadOutbox, OutboxPublisher, type OutboxPublisherDeps } from "./outbox/index.js";
import { loadDefaultConversionModel } from "./scoring/index.js";

/** A fixed 5 s between attempts of the whole start-up provisioning, for as long as it fails. */
const PROVISION_RETRY = { baseMs: 5000, maxMs: 5000 };

/**
 * Composition root. The HTTP server starts first and answers while NATS is unreachable
 * (/readyz 503, queue status disabled, new leads to the local outbox, other routes 503); NATS
 * is connected and the topology provisioned in the background.
 */
runMain("lead-intake", async () => {
  const config = loadLeadIntakeConfig();
  const logger = createLogger({ service: "lead-intake", level: config.LOG_LEVEL });
  const registry = createMetricsRegistry("lead-intake");
  const metrics = createLeadIntakeMetrics(registry);
  const readiness = new Readiness();
  readiness.set("nats", false, "connecting");
  readiness.set("topology", false, "waiting for NATS");
  const topo = topology({ replicas: config.NATS_REPLICAS, queue: config.FOLLOWUP_QUEUE });
  const broker = new Broker(topo, { timeoutMs: config.PUBLISH_TIMEOUT_MS });
  broker.onChange((available) => metrics.natsAvailable.set(available ? 1 : 0));
  metrics.natsAvailable.set(0);
  // The committed model until the registry says otherwise (a watch, once NATS is there).
  const scorer = new LiveScorer(loadDefaultConversionModel(logger));
  const direct = new JetStreamPublisher(broker, { timeoutMs: config.PUBLISH_TIMEOUT_MS });
  const outbox = await openOutbox(config, { broker, direct, metrics, readiness, logger });

  const app = await buildApp({
    config,
    logger,
    registry,
    metrics,
    readiness,
    broker,
    publisher: outbox ?? direct,
    ...(outbox ? { outbox } : {}),
    scorer,
    apiKeys: new ApiKeys(config.API_KEYS),
    hookKey: config.FOLLOWUP_HOOK_SECRET,
    channelSecrets: channelSecretsOf(config),
    now: () => new Date(),
  });
  await app.listen({ host: config.HOST, port: config.PORT });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.PORT;

  let nc: NatsConnection | undefined;
  let modelWatch: { stop(): void } | undefined;
  let stopping = false;
  onShutdown(logger, async () => {
    stopping = true;
    await app.close();
    await outbox?.stop();
    modelWatch?.stop();
    await nc?.drain();
  });

  logger.info(
    {
      port,
      queue: topo.queue,
      followups_enabled: config.FOLLOWUP_ENABLED,
      api_keys: config.API_KEYS.length,
      hook_signatures: config.FOLLOWUP_HOOK_SECRET !== undefined,
      channel_secrets_key: config.CHANNEL_SECRETS_KEY?.id ?? null,
      channel_secrets_old_keys: config.CHANNEL_SECRETS_KEYS_OLD?.length ?? 0,
      model_version: scorer.version,
      scorer: scorer.source,
      body_limit_bytes: config.BODY_LIMIT_BYTES,
      rate_limit_per_minute: config.RATE_LIMIT_PER_MINUTE,
      outbox_dir: outbox ? outboxDirOf(config) : null,
      outbox_max_leads: config.OUTBOX_MAX_LEADS,
    },
    "lead_intake_started",
  );
  if (outbox === undefined) {
    logger.warn("OUTBOX_MAX_LEADS=0: no local outbox; leads are refused with 503 while NATS is down");
  }
  if (config.FOLLOWUP_HOOK_SECRET === undefined) {
    logger.warn("FOLLOWUP_HOOK_SECRET is not set: the hook receiver accepts API-key calls only");
  }

  // In the background: the server above already answers, degraded, until this completes.
  void (async () => {
    nc = await connectNats({ settings: config, name: "lead-intake", logger, readiness });
    broker.setReason("provisioning the JetStream topology");
    for (let attempt = 1; !stopping; attempt++) {
      try {
        await prepareTopology(nc, topo, {
          identity: "lead-intake",
          provision: config.NATS_PROVISION,
          logger,
        });
        await broker.attach(nc);
        modelWatch = await watchCurrentModel(new ModelRegistry(broker.handles().models), scorer, logger);
        readiness.set("topology", true);
        logger.info({ attempt }, "broker_ready");
        return;
      } catch (err) {
        const reason = `provisioning failed: ${(err as Error).message}`;
        broker.setReason(reason);
        readiness.set("topology", false, reason);
        const retryInMs = backoffDelayMs(attempt, PROVISION_RETRY);
        logger.error({ err, attempt, retry_in_ms: retryInMs }, "topology_provisioning_failed");
        await pause(retryInMs);
      }
    }
  })().catch((err: unknown) => logger.error({ err }, "nats_connect_failed"));
});

/**
 * The fail-open outbox (none when OUTBOX_MAX_LEADS=0). A directory that cannot be used stops
 * start-up like a bad variable: running without it would refuse leads while NATS is down.
 */
async function openOutbox(
  config: LeadIntakeConfig,
  deps: Omit<OutboxPublisherDeps, "outbox">,
): Promise<OutboxPublisher | undefined> {
  if (config.OUTBOX_MAX_LEADS === 0) return undefined;
  const dir = outboxDirOf(config);
  let opened: Awaited<ReturnType<typeof LeadOutbox.open>>;
  try {
    opened = await LeadOutbox.open({ dir, maxLeads: config.OUTBOX_MAX_LEADS });
  } catch (err) {
    throw new ConfigError([
      { variable: "OUTBOX_DIR", message: `cannot use ${dir}: ${(err as Error).message}` },
    ]);
  }
  if (opened.removedTemp > 0) {
    deps.logger.info({ removed: opened.removedTemp, dir }, "outbox_unacknowledged_temp_files_removed");
  }
  deps.metrics.outboxCapacity.set(config.OUTBOX_MAX_LEADS);
  const publisher = new OutboxPublisher({ ...deps, outbox: opened.outbox });
  publisher.start();
  return publisher;
}
