// @followup/nats-harness: real nats-servers and child processes for tests, with cleanup that
// survives failures, Ctrl-C and killed workers. See reaper.ts for how.
export { TEST_ADMIN, TEST_ADMIN_USER } from "./admin.js";
export { resolveNatsServerBin } from "./binary.js";
export { type NatsCluster, type NatsClusterOptions, startNatsCluster } from "./cluster.js";
export { freezeProcess } from "./freeze.js";
export { type MetricRegistry, metricValue } from "./metrics.js";
export { freePort } from "./port.js";
export { type ExitStatus, type ManagedProcess, type SpawnOptions, spawnProcess } from "./process.js";
export {
  errorSummary,
  type RawExchange,
  type RawExchangeOptions,
  type RawResponse,
  rawExchange,
  type SlowClientOptions,
  slowClientBeside,
} from "./raw-http.js";
export { isProcessAlive } from "./reaper.js";
export { type NatsServer, type NatsServerOptions, startNatsServer } from "./server.js";
export {
  type LogLine,
  parseLogLines,
  REPO_ROOT,
  SERVICE_NAMES,
  type ServiceName,
  type SpawnServiceOptions,
  serviceCommand,
  serviceMain,
  spawnService,
  waitForReadyz,
} from "./services.js";
export { type WaitForOptions, waitFor } from "./wait.js";
