import { OpsSummary, okEnvelope } from "@followup/contracts";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { AppDeps } from "../deps.js";
import { onBroker } from "../errors.js";
import { tenantOf } from "../http/request.js";
import { errorResponses, jsonResponse } from "../http/responses.js";
import { tenantSummary } from "./store.js";

/** GET /ops/summary: the caller's tenant at a glance, for the console's overview. */
export const summaryRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  app.get(
    "/ops/summary",
    {
      schema: {
        operationId: "getSummary",
        tags: ["summary"],
        summary: "The tenant at a glance",
        description:
          "The caller's tenant's follow-ups waiting and due within the hour, its dead letters, and the results of " +
          "the last 24 hours by channel (delivered, retried, failed for good, suppressed).",
        response: {
          200: jsonResponse("The tenant's numbers", okEnvelope(OpsSummary)),
          ...errorResponses([401, 429, 500, 503]),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const handles = deps.broker.handles();
      const data = await onBroker("summarising the tenant", () => tenantSummary(handles, tenant, deps.now()));
      return { ok: true as const, data };
    },
  );
};
