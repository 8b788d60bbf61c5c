import {
  createHttpServer,
  type HttpLimits,
  healthRoutes,
  type Logger,
  type Readiness,
  useErrorEnvelope,
} from "@followup/service-kit";
import { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import type { Registry } from "prom-client";
import { type ReportRoutesDeps, reportRoutes } from "./routes.js";

/** The HTTP server of the reports service, without listening: the kit's edge, health, the report routes. */
export async function buildReportsApp(
  deps: ReportRoutesDeps & {
    limits: Partial<HttpLimits>;
    logger: Logger;
    registry: Registry;
    readiness: Readiness;
  },
): Promise<FastifyInstance> {
  const app = createHttpServer(deps.limits, {
    loggerInstance: deps.logger.child({ component: "http" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "request_id" }),
    return503OnClosing: true,
  });
  useErrorEnvelope(app);
  await app.register(healthRoutes, { registry: deps.registry, readiness: deps.readiness });
  await app.register(reportRoutes, deps);
  return app;
}
