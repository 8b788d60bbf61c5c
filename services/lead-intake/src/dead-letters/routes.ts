import {
  DEAD_LETTER_LIMIT_MAX,
  DeadLetterList,
  DeadLetterQuery,
  DeadLetterReplayRequest,
  DeadLettersReplayed,
  okEnvelope,
} from "@followup/contracts";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { AppDeps } from "../deps.js";
import { onBroker } from "../errors.js";
import { tenantOf } from "../http/request.js";
import { errorResponses, jsonResponse } from "../http/responses.js";
import { listDeadLetters, replayDeadLetters } from "./store.js";

/**
 * Dead letters of the caller's tenant (the API key's), listed and replayed. Replaying publishes
 * each letter's due follow-up again with its idempotency key, so a receiver that got it already
 * drops it.
 */
export const deadLetterRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  app.get(
    "/ops/dead-letters",
    {
      schema: {
        operationId: "listDeadLetters",
        tags: ["dead-letters"],
        summary: "List dead letters",
        description:
          "The caller's tenant's follow-ups that exhausted their attempts, oldest first, optionally of one lead " +
          "and step; at most `limit` (default 100, at most 1000).",
        querystring: DeadLetterQuery,
        response: {
          200: jsonResponse("The tenant's dead letters", okEnvelope(DeadLetterList)),
          ...errorResponses([400, 401, 429, 500, 503]),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const { query } = request;
      const { nc, topology } = deps.broker.handles();
      const items = await onBroker("listing dead letters", () =>
        listDeadLetters(nc, topology, {
          tenant,
          ...(query.lead_id !== undefined ? { leadId: query.lead_id } : {}),
          ...(query.step !== undefined ? { step: query.step } : {}),
          ...(query.limit !== undefined ? { limit: query.limit } : {}),
        }),
      );
      return { ok: true as const, data: { count: items.length, dead_letters: items } };
    },
  );

  app.post(
    "/ops/dead-letters/replay",
    {
      // No body, or an empty one, replays every dead letter of the tenant.
      schema: {
        operationId: "replayDeadLetters",
        tags: ["dead-letters"],
        summary: "Replay dead letters",
        description:
          "Publishes each matching dead letter's due follow-up again with its idempotency key, so a receiver " +
          "that got it already drops it. No body replays every dead letter of the tenant; at most 1000 a " +
          "call (`more` says to call again).",
        body: DeadLetterReplayRequest.nullable(),
        response: {
          200: jsonResponse("The dead letters replayed", okEnvelope(DeadLettersReplayed)),
          ...errorResponses([400, 401, 413, 415, 429, 500, 503]),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const body = request.body ?? {};
      const { nc, topology } = deps.broker.handles();
      const { replayed } = await onBroker("replaying dead letters", () =>
        replayDeadLetters(nc, topology, {
          tenant,
          ...(body.lead_id !== undefined ? { leadId: body.lead_id } : {}),
          ...(body.step !== undefined ? { step: body.step } : {}),
          limit: DEAD_LETTER_LIMIT_MAX,
        }),
      );
      request.log.info(
        { tenant, lead_id: body.lead_id, step: body.step, replayed: replayed.length },
        "dead_letters_replayed",
      );
      return {
        ok: true as const,
        data: {
          replayed: replayed.length,
          more: replayed.length >= DEAD_LETTER_LIMIT_MAX,
          items: replayed.map((item) => ({
            seq: item.seq,
            lead_id: item.event.data.lead_id,
            step: item.event.data.step,
            idempotency_key: item.event.data.idempotency_key,
          })),
        },
      };
    },
  );
};
