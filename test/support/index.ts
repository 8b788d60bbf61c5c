// Support for the cross-service tests (end-to-end, contracts, faults): the engine as real
// processes around a real nats-server, lead-intake's API, a recording hook, a core-NATS event
// recorder, the event contracts applied to what was seen, /metrics as numbers, and fake providers
// (Twilio, SendGrid, Slack) with a real SMTP server.

export {
  type LogLine,
  metricValue,
  parseLogLines,
  REPO_ROOT,
  SERVICE_NAMES,
  type ServiceName,
  serviceMain,
} from "@followup/nats-harness";
export { ApiClient, type ApiResponse, REFERENCE_LEADS } from "./api.js";
export { CHROMIUM_BIN, launchChromium } from "./browser.js";
export { channelTestEnv, PUBLIC_BASE_URL, putTwilioChannel, SMS_FROM, zoneWhere } from "./channels.js";
export { type Engine, type EngineOptions, startEngine, TENANTS, testBrokerAuth } from "./engine.js";
export {
  type ContractViolation,
  contractProblems,
  contractViolations,
  countByKind,
  SUBJECT_CONTRACTS,
  storedRecordProblems,
} from "./event-contracts.js";
export {
  ENGINE_SUBJECTS,
  EventRecorder,
  headerOf,
  type RecordedMessage,
  recordEvents,
} from "./event-recorder.js";
export * from "./fakes/index.js";
export {
  dueData,
  HOOK_KEY,
  HOOK_SECRET,
  modelRecord,
  newHookSecret,
  publishDeadLetter,
  putLead,
  storedLead,
} from "./fixtures.js";
export {
  type HookAnswer,
  type HookCall,
  HookRecorder,
  type HookRecorderOptions,
  type HookResponder,
  startHookRecorder,
} from "./hook-recorder.js";
export { type MetricSample, MetricsSnapshot, parsePrometheusText, scrapeMetrics } from "./metrics.js";
export {
  ServiceProcess,
  type ServiceProcessOptions,
  type StartedWhen,
  startServiceProcess,
} from "./services.js";
export { describeSummary, type Summary, summarize } from "./timing.js";
