import {
  createHttpServer,
  type HttpLimits,
  healthRoutes,
  type Readiness,
  useErrorEnvelope,
} from "@followup/service-kit";
import type { NatsConnection } from "@nats-io/transport-node";
import { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { lagRoutes } from "./lag.js";
import { liveRoutes } from "./live.js";
import type { ConsoleMetrics } from "./metrics.js";
import { pageRoutes, SECURITY_HEADERS } from "./pages.js";
import { proxyRoutes } from "./proxy.js";
import { REPORTS_PATHS, Upstream } from "./upstream.js";

export interface ConsoleDeps {
  config: {
    LEAD_INTAKE_URL: string;
    REPORTS_URL: string;
    CONSOLE_METRICS_URLS: string[];
    CONSOLE_MAX_STREAMS: number;
    CONSOLE_UPSTREAM_TIMEOUT_MS: number;
  } & Partial<HttpLimits>;
  logger: Logger;
  registry: Registry;
  metrics: ConsoleMetrics;
  readiness: Readiness;
  nats: () => NatsConnection | undefined;
}

/** The console's HTTP server, without listening; `closeStreams` ends the live streams (shutdown). */
export async function buildConsole(
  deps: ConsoleDeps,
): Promise<{ app: FastifyInstance; closeStreams(): void }> {
  const app = createHttpServer(deps.config, {
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "request_id" }),
    return503OnClosing: true,
  });
  useErrorEnvelope(app);
  app.addHook("onRequest", async (_request, reply) => {
    reply.headers(SECURITY_HEADERS);
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    if (route === "/metrics" || route === "/healthz" || route === "/readyz") return;
    request.log.info(
      { method: request.method, route, status: reply.statusCode, duration_ms: Math.round(reply.elapsedTime) },
      "request_completed",
    );
  });
  const upstream = new Upstream(deps.config.LEAD_INTAKE_URL, deps.config.CONSOLE_UPSTREAM_TIMEOUT_MS);
  const reports = new Upstream(
    deps.config.REPORTS_URL,
    deps.config.CONSOLE_UPSTREAM_TIMEOUT_MS,
    "reports",
    REPORTS_PATHS,
  );
  const streams = new Set<() => void>();
  await app.register(healthRoutes, { registry: deps.registry, readiness: deps.readiness });
  await app.register(pageRoutes, {});
  await app.register(lagRoutes, { upstream, metricsUrls: deps.config.CONSOLE_METRICS_URLS });
  await app.register(liveRoutes(streams), {
    upstream,
    metrics: deps.metrics,
    nats: deps.nats,
    maxStreams: deps.config.CONSOLE_MAX_STREAMS,
  });
  await app.register(proxyRoutes, { upstreams: [reports, upstream], metrics: deps.metrics });
  return {
    app,
    closeStreams: () => {
      for (const close of [...streams]) close();
    },
  };
}
