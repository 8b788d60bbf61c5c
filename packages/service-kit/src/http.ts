import {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  LogController,
} from "fastify";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { HttpLimits } from "./config.js";
import { createHttpServer, useErrorEnvelope } from "./http-edge.js";
import type { Readiness } from "./readiness.js";

export interface HealthDeps {
  registry: Registry;
  readiness: Readiness;
}

/**
 * `/metrics` (Prometheus text), `/healthz` (the process is alive) and `/readyz` (every
 * readiness check passes: NATS connected, streams provisioned, ...; 503 with the failing
 * checks otherwise). Registered by every service, on its own server or beside its routes.
 */
export const healthRoutes: FastifyPluginAsync<HealthDeps> = async (app, { registry, readiness }) => {
  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", registry.contentType);
    return registry.metrics();
  });
  app.get("/healthz", async () => ({ ok: true, data: { status: "alive" } }));
  app.get("/readyz", async (_req, reply) => {
    const report = readiness.report();
    reply.code(report.ready ? 200 : 503);
    return { ok: report.ready, data: report };
  });
};

/** A small server with only the health routes, for services without an HTTP API of their own. */
export async function startHealthServer(options: {
  port: number;
  host?: string;
  registry: Registry;
  readiness: Readiness;
  logger: Logger;
  /** The service's HTTP_* settings (its config); unset ones take their defaults. */
  limits?: Partial<HttpLimits>;
}): Promise<{ app: FastifyInstance; port: number }> {
  const app = createHttpServer(options.limits ?? {}, {
    loggerInstance: options.logger.child({ component: "http" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  useErrorEnvelope(app);
  await app.register(healthRoutes, { registry: options.registry, readiness: options.readiness });
  await app.listen({ port: options.port, host: options.host ?? "0.0.0.0" });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  options.logger.info({ port }, "health_server_listening");
  return { app, port };
}
