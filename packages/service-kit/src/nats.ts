import { readFileSync } from "node:fs";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { Readiness } from "./readiness.js";

export interface NatsSettings {
  NATS_URL: string;
  NATS_CREDS?: string | undefined;
  NATS_USER?: string | undefined;
  NATS_PASSWORD?: string | undefined;
  NATS_TOKEN?: string | undefined;
  NATS_TLS_CA?: string | undefined;
  NATS_TLS_CERT?: string | undefined;
  NATS_TLS_KEY?: string | undefined;
  /** Replies to this connection's requests come back under it; a restricted identity may subscribe only there. */
  NATS_INBOX_PREFIX?: string | undefined;
}

export interface ConnectOptions {
  settings: NatsSettings;
  /** The connection name the server shows in `nats server report connections`. */
  name: string;
  logger: Logger;
  /** Kept up to date with the connection's state under the check "nats". */
  readiness?: Readiness;
}

/**
 * The one NATS connect helper: named connection, reconnect forever with jitter, status
 * changes logged and reflected in readiness. Resolves once the first connection is up
 * (it keeps trying until then; a service that can work without NATS should not await it).
 */
export async function connectNats(options: ConnectOptions): Promise<NatsConnection> {
  const { settings, name, logger, readiness } = options;
  const servers = settings.NATS_URL.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  readiness?.set("nats", false, "connecting");
  const tls =
    settings.NATS_TLS_CA || settings.NATS_TLS_CERT
      ? {
          ...(settings.NATS_TLS_CA ? { caFile: settings.NATS_TLS_CA } : {}),
          ...(settings.NATS_TLS_CERT ? { certFile: settings.NATS_TLS_CERT } : {}),
          ...(settings.NATS_TLS_KEY ? { keyFile: settings.NATS_TLS_KEY } : {}),
        }
      : undefined;
  const nc = await connect({
    servers,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    reconnectJitter: 500,
    waitOnFirstConnect: true,
    pingInterval: 10_000,
    maxPingOut: 3,
    // Without it nats.js builds an Error (with its stack) per request and per timer up front, in
    // case it fails: a quarter of the scheduler's CPU in docs/benchmarks.md. A failed request
    // keeps its message and cause; its stack just no longer shows the awaiting caller.
    noAsyncTraces: true,
    ...(settings.NATS_CREDS ? { authenticator: credsAuthenticator(readFileSync(settings.NATS_CREDS)) } : {}),
    ...(settings.NATS_USER ? { user: settings.NATS_USER, pass: settings.NATS_PASSWORD ?? "" } : {}),
    ...(settings.NATS_TOKEN ? { token: settings.NATS_TOKEN } : {}),
    ...(tls ? { tls } : {}),
    ...(settings.NATS_INBOX_PREFIX ? { inboxPrefix: settings.NATS_INBOX_PREFIX } : {}),
  });
  logger.info({ server: nc.getServer(), name }, "nats_connected");
  readiness?.set("nats", true);
  void watchStatus(nc, logger, readiness);
  return nc;
}

async function watchStatus(nc: NatsConnection, logger: Logger, readiness?: Readiness): Promise<void> {
  for await (const status of nc.status()) {
    switch (status.type) {
      case "disconnect":
        readiness?.set("nats", false, "disconnected");
        logger.warn({ server: status.server }, "nats_disconnected");
        break;
      case "reconnect":
        readiness?.set("nats", true);
        logger.info({ server: status.server }, "nats_reconnected");
        break;
      case "error":
        logger.error({ err: status.error }, "nats_error");
        break;
      case "ldm":
        logger.warn({ server: status.server }, "nats_lame_duck_mode");
        break;
      case "staleConnection":
        logger.warn("nats_stale_connection");
        break;
      case "slowConsumer":
        logger.warn({ sub: status.sub?.getSubject() }, "nats_slow_consumer");
        break;
      case "close":
        readiness?.set("nats", false, "closed");
        break;
      default:
        logger.debug({ status: status.type }, "nats_status");
    }
  }
}
