export { type ApiKeyEntry, ApiKeys, type Caller, parseApiKeys } from "./api-keys.js";
export {
  ATOMIC_BATCH_MAX,
  type AtomicBatchAck,
  AtomicBatchRejectedError,
  type AtomicMessage,
  isAtomicBatchRejected,
  publishAtomic,
  publishHeaders,
  type StagedBatch,
  stageAtomic,
} from "./atomic-batch.js";
export {
  type Backoff,
  backoffCeilingMs,
  backoffDelayMs,
  pause,
  type RetryOptions,
  retry,
} from "./backoff.js";
export {
  AUTH_CONFIG_FILE,
  type BrokerAuth,
  brokerAuth,
  envFileOf,
  identityEnv,
  readIdentityEnv,
  runProvision,
  writeBrokerAuth,
} from "./broker-auth.js";
export { channelEnv, channelSecretsOf, checkChannelKeys } from "./channel-env.js";
export {
  addSuppression,
  type NewSuppression,
  openSettings,
  secretContext,
  suppressionAddressContext,
  UnreadableSecretError,
} from "./channel-secrets.js";
export {
  ConfigError,
  commonEnv,
  type Env,
  env,
  type HttpLimits,
  httpEnv,
  LOG_LEVELS,
  loadConfig,
} from "./config.js";
export { type HealthDeps, healthRoutes, startHealthServer } from "./http.js";
export {
  createHttpServer,
  errorEnvelope,
  httpLimitsOf,
  requestIdOf,
  useErrorEnvelope,
} from "./http-edge.js";
export {
  hasApiCode,
  isConsumerNotFound,
  isMessageGone,
  isNoMessages,
  isNotAnswering,
  isStreamNotFound,
  isWrongLastSequence,
  ServerErrorCodes,
} from "./jetstream-errors.js";
export { BatchedKvReads, type KvRead, type KvReader } from "./kv-reads.js";
export { type LeadRead, readLead, readStopReason, readStopState, stopReasonOf } from "./leads.js";
export { EXIT_CONFIG, onShutdown, runMain } from "./lifecycle.js";
export {
  createLogger,
  flatLineLogger,
  holdLinesForTurn,
  type Logger,
  logTogether,
  maskEmail,
  maskPhone,
  REDACTED_PATHS,
} from "./logger.js";
export {
  type ConsumerLag,
  consumerLagMetrics,
  createMetricsRegistry,
  metricsOn,
  readConsumerLag,
} from "./metrics.js";
export { type ConnectOptions, connectNats, type NatsSettings } from "./nats.js";
export {
  readStatusCallbackRef,
  readUnsubscribeToken,
  type StatusCallbackRef,
  type TwilioParams,
  twilioSignature,
  twilioStatusCallbackUrl,
  type UnsubscribeSecret,
  type UnsubscribeSubject,
  unsubscribeToken,
  unsubscribeUrl,
  verifyTwilioSignature,
  verifyUnsubscribeToken,
} from "./provider-signatures.js";
export {
  consumerConfig,
  isPermissionViolation,
  type ProvisionOptions,
  type ProvisionSelection,
  prepareTopology,
  provisionBucket,
  provisionConsumer,
  provisionStream,
  provisionTopology,
  streamConfig,
  TopologyNotProvisionedError,
} from "./provision.js";
export { Readiness } from "./readiness.js";
export {
  type OpenedSecret,
  openSecret,
  parseSealingKey,
  SealError,
  type SealingKey,
  SealingKeyError,
  SealingKeyring,
  sealingKeyId,
  sealingKeyring,
  sealSecret,
} from "./sealing.js";
export { readStream } from "./stream-read.js";
export { publishTimer, type TimerStored, timerMessage, timerParts, timerTtlSeconds } from "./timers.js";
export {
  DEFAULT_TOLERANCE_SECONDS,
  parseWebhookSecret,
  type SignedHeaders,
  signWebhook,
  type VerifyResult,
  verifyWebhook,
  WebhookSecretError,
  webhookHeaders,
} from "./webhooks.js";
