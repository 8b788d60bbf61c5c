import { CallerView, okEnvelope } from "@followup/contracts";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { AppDeps } from "../deps.js";
import { tenantOf } from "../http/request.js";
import { errorResponses, jsonResponse } from "../http/responses.js";

/**
 * GET /v1/caller: which tenant the x-api-key is. The console signs in with it, and learns the
 * tenant whose subjects it may tail for the caller.
 */
export const callerRoom: FastifyPluginAsyncZod<AppDeps> = async (app) => {
  app.get(
    "/v1/caller",
    {
      schema: {
        operationId: "getCaller",
        tags: ["caller"],
        summary: "Who the API key is",
        description: "The tenant the x-api-key authenticates; 401 for a missing or unknown key.",
        response: {
          200: jsonResponse("The caller", okEnvelope(CallerView)),
          ...errorResponses([401, 429, 500]),
        },
      },
    },
    async (request) => ({ ok: true as const, data: { tenant: tenantOf(request) } }),
  );
};
