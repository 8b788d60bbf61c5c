import { okEnvelope, UpcomingFollowups, UpcomingQuery } from "@followup/contracts";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { AppDeps } from "../deps.js";
import { onBroker } from "../errors.js";
import { tenantOf } from "../http/request.js";
import { errorResponses, jsonResponse } from "../http/responses.js";
import { upcomingFollowups } from "./store.js";

/** GET /ops/followups/upcoming: the caller's tenant's next follow-ups to fire. */
export const upcomingRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  app.get(
    "/ops/followups/upcoming",
    {
      schema: {
        operationId: "listUpcomingFollowups",
        tags: ["upcoming"],
        summary: "List the next follow-ups to fire",
        description:
          "The caller's tenant's follow-ups whose timers are still waiting, soonest first, with the sequence and " +
          "channel of their lead's plan; filtered by lead, channel or sequence; at most `limit` (default 50, at " +
          "most 500).",
        querystring: UpcomingQuery,
        response: {
          200: jsonResponse("The tenant's next follow-ups", okEnvelope(UpcomingFollowups)),
          ...errorResponses([400, 401, 429, 500, 503]),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const { query } = request;
      const handles = deps.broker.handles();
      const data = await onBroker("listing upcoming follow-ups", () =>
        upcomingFollowups(
          handles,
          tenant,
          {
            leadId: query.lead_id,
            channel: query.channel,
            sequence: query.sequence,
            limit: query.limit,
          },
          request.log,
        ),
      );
      return { ok: true as const, data };
    },
  );
};
