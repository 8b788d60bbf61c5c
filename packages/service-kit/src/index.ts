export { AUTH_CONFIG_FILE, envFileOf, identityEnv, writeBrokerAuth } from "./broker-auth.js";
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
export {
  DEAD_LETTER_LIMIT_DEFAULT,
  DEAD_LETTER_LIMIT_MAX,
  type DeadLetterFilter,
  type DeadLetterItem,
  deadLetterSubject,
  listDeadLetters,
  replayDeadLetters,
} from "./dead-letters.js";
export { type HealthDeps, healthRoutes, startHealthServer } from "./http.js";
export {
  createHttpServer,
  errorEnvelope,
  httpLimitsOf,
  requestIdOf,
  useErrorEnvelope,
} from "./http-edge.js";
export { EXIT_CONFIG, onShutdown, runMain } from "./lifecycle.js";
export { createLogger, type Logger, maskEmail, maskPhone, REDACTED_PATHS } from "./logger.js";
export { createMetricsRegistry } from "./metrics.js";
export { type ConnectOptions, connectNats, type NatsSettings } from "./nats.js";
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
  DEFAULT_TOLERANCE_SECONDS,
  parseWebhookSecret,
  type SignedHeaders,
  signWebhook,
  type VerifyResult,
  verifyWebhook,
  WebhookSecretError,
  webhookHeaders,
} from "./webhooks.js";
