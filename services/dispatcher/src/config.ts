import { topology } from "@followup/contracts";
import {
  ConfigError,
  channelEnv,
  checkChannelKeys,
  commonEnv,
  type Env,
  env,
  loadConfig,
} from "@followup/service-kit";
import { providerEnv } from "./channels/provider/env.js";
import { MARKER_CONCURRENCY } from "./markers.js";
import { RESULT_BATCH_WINDOW_MS } from "./result-batches.js";

/** Where lead-intake's own hook receiver listens by default (the system it replaces POSTed there too). */
export const DEFAULT_HOOK_URL = "http://127.0.0.1:8000/ops/followup-hook";

/** The consumers' max_ack_pending: more deliveries in flight than that could never be pulled. */
const { dispatch, dispatchMarkers } = topology().consumers;
const MAX_ACK_PENDING = dispatch.maxAckPending;

export const dispatcherEnv = {
  ...commonEnv,
  FOLLOWUP_QUEUE: env.queue(),
  FOLLOWUP_HOOK_URL: env.url(DEFAULT_HOOK_URL, ["http", "https"]),
  /** Standard Webhooks secret (`whsec_` + base64) shared with the hook receiver; required. */
  FOLLOWUP_HOOK_SECRET: env.webhookSecret(),
  FOLLOWUP_MAX_ATTEMPTS: env.number(8, { min: 1, max: 100, integer: true }),
  FOLLOWUP_RETRY_BASE_MS: env.number(1000, { min: 1, max: 3_600_000, integer: true }),
  FOLLOWUP_RETRY_MAX_MS: env.number(300_000, { min: 1, max: 86_400_000, integer: true }),
  FOLLOWUP_HOOK_TIMEOUT_MS: env.number(10_000, { min: 100, max: 120_000, integer: true }),
  DISPATCH_CONCURRENCY: env.number(64, { min: 1, max: MAX_ACK_PENDING, integer: true }),
  /** The channel of every follow-up a timer's marker makes due (a channel registry name). */
  FOLLOWUP_CHANNEL: env.string("hook").refine((v) => /^[A-Za-z0-9_-]{1,64}$/.test(v), {
    message: "expected 1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
  }),
  /**
   * Timer messages (mostly expiry markers) held at once: a marker waits for the last fraction of
   * a second before due_at, a channel slot, or its result's batch. Each one held makes every
   * expiry cost the server more (markers.ts, MARKER_CONCURRENCY), so it stays a few times the
   * channels' calls in flight.
   */
  MARKER_CONCURRENCY: env.number(MARKER_CONCURRENCY, {
    min: 1,
    max: Math.floor(dispatchMarkers.maxAckPending / 2),
    integer: true,
  }),
  /**
   * How long a result waits for others to share its atomic batch (0: only those already waiting).
   * It holds back the marker's ack, not the call.
   */
  RESULT_BATCH_WINDOW_MS: env.number(RESULT_BATCH_WINDOW_MS, { min: 0, max: 1_000, integer: true }),
  /** Calls in flight per channel (the HTTP hook's connection pool size). */
  HOOK_CONCURRENCY: env.number(32, { min: 1, max: 1024, integer: true }),
  /** Calls in flight per provider channel (sms, email, slack), and connections per provider API. */
  PROVIDER_CONCURRENCY: env.number(16, { min: 1, max: 1024, integer: true }),
  ...providerEnv,
  ...channelEnv,
  /** How long SIGTERM waits for in-flight calls before releasing them for redelivery. */
  DISPATCH_SHUTDOWN_GRACE_MS: env.number(20_000, { min: 0, max: 120_000, integer: true }),
  PORT: env.port(8002),
  HOST: env.string("0.0.0.0"),
};

export type DispatcherConfig = ReturnType<typeof loadDispatcherConfig>;

/** Loads and validates the dispatcher's environment; throws ConfigError naming each bad variable. */
export function loadDispatcherConfig(source: Env = process.env) {
  const config = loadConfig(dispatcherEnv, source);
  checkChannelKeys(config);
  if (config.FOLLOWUP_RETRY_BASE_MS > config.FOLLOWUP_RETRY_MAX_MS) {
    throw new ConfigError([
      {
        variable: "FOLLOWUP_RETRY_BASE_MS",
        message: `expected at most FOLLOWUP_RETRY_MAX_MS (${config.FOLLOWUP_RETRY_MAX_MS}); got ${config.FOLLOWUP_RETRY_BASE_MS}`,
      },
    ]);
  }
  return config;
}
