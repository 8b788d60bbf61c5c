import { topology } from "@followup/contracts";
import {
  channelSecretsOf,
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
import { createChannels } from "./channels/index.js";
import { loadDispatcherConfig } from "./config.js";
import { startDispatcher } from "./dispatcher.js";
import { createDispatcherMetrics } from "./metrics.js";

/** Composition root: config, connection, topology, channels, the consumer, health, shutdown. No logic. */
runMain("dispatcher", async () => {
  const config = loadDispatcherConfig();
  const logger = createLogger({ service: "dispatcher", level: config.LOG_LEVEL });
  const registry = createMetricsRegistry("dispatcher");
  const readiness = new Readiness();
  readiness.set("consumer", false, "starting");

  const nc = await connectNats({ settings: config, name: "dispatcher", logger, readiness });
  const topo = topology({ replicas: config.NATS_REPLICAS, queue: config.FOLLOWUP_QUEUE });
  await prepareTopology(nc, topo, { identity: "dispatcher", provision: config.NATS_PROVISION, logger });
  const jsm = await jetstreamManager(nc);
  const consumers = Object.values(topo.consumers).filter((c) => c.consumedBy === "dispatcher");
  const metrics = createDispatcherMetrics(registry, { consumerLag: () => readConsumerLag(jsm, consumers) });

  const { registry: channels, stop: stopChannels } = await createChannels({
    nc,
    topology: topo,
    metrics,
    logger,
    hook: {
      url: config.FOLLOWUP_HOOK_URL,
      secret: config.FOLLOWUP_HOOK_SECRET,
      timeoutMs: config.FOLLOWUP_HOOK_TIMEOUT_MS,
      concurrency: config.HOOK_CONCURRENCY,
    },
    providerConcurrency: config.PROVIDER_CONCURRENCY,
    providerTimeoutMs: config.PROVIDER_TIMEOUT_MS,
    twilioApiUrl: config.TWILIO_API_URL,
    sendgridApiUrl: config.SENDGRID_API_URL,
    keyring: channelSecretsOf(config),
    publicBaseUrl: config.PUBLIC_BASE_URL,
    unsubscribeSecret: config.UNSUBSCRIBE_SECRET,
  });
  const dispatcher = await startDispatcher({
    nc,
    topology: topo,
    channels,
    metrics,
    logger,
    maxAttempts: config.FOLLOWUP_MAX_ATTEMPTS,
    backoff: { baseMs: config.FOLLOWUP_RETRY_BASE_MS, maxMs: config.FOLLOWUP_RETRY_MAX_MS },
    concurrency: config.DISPATCH_CONCURRENCY,
    markerConcurrency: config.MARKER_CONCURRENCY,
    channel: config.FOLLOWUP_CHANNEL,
    resultBatchWindowMs: config.RESULT_BATCH_WINDOW_MS,
    shutdownGraceMs: config.DISPATCH_SHUTDOWN_GRACE_MS,
    readiness,
  });
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
      await dispatcher.stop();
      stopChannels();
      await channels.closeAll();
      await health.app.close();
      await nc.drain();
    },
    // The grace for calls in flight, then room to publish their results and drain.
    { timeoutMs: config.DISPATCH_SHUTDOWN_GRACE_MS + 15_000 },
  );

  const hook = new URL(config.FOLLOWUP_HOOK_URL);
  logger.info(
    {
      queue: topo.queue,
      hook_url: `${hook.origin}${hook.pathname}`,
      max_attempts: config.FOLLOWUP_MAX_ATTEMPTS,
      retry_base_ms: config.FOLLOWUP_RETRY_BASE_MS,
      retry_max_ms: config.FOLLOWUP_RETRY_MAX_MS,
      hook_timeout_ms: config.FOLLOWUP_HOOK_TIMEOUT_MS,
      concurrency: config.DISPATCH_CONCURRENCY,
      hook_concurrency: config.HOOK_CONCURRENCY,
      marker_concurrency: config.MARKER_CONCURRENCY,
      channel: config.FOLLOWUP_CHANNEL,
      result_batch_window_ms: config.RESULT_BATCH_WINDOW_MS,
      provider_concurrency: config.PROVIDER_CONCURRENCY,
      public_base_url: config.PUBLIC_BASE_URL ?? null,
      channel_secrets_key: config.CHANNEL_SECRETS_KEY?.id ?? null,
      port: health.port,
    },
    "dispatcher_started",
  );
});
