import { Token } from "@followup/contracts";
import { DEAD_LETTER_LIMIT_MAX, listDeadLetters, replayDeadLetters } from "@followup/service-kit";
import type { FastifyPluginAsync } from "fastify";
import { z } from "zod";
import type { AppDeps } from "../app.js";
import { parseWith } from "../errors.js";
import { onBroker } from "../publisher.js";
import { tenantOf } from "./request.js";

const Step = z.coerce
  .number({ error: "must be an integer from 1 to 1000" })
  .int("must be an integer from 1 to 1000")
  .min(1, "must be an integer from 1 to 1000")
  .max(1000, "must be an integer from 1 to 1000");

export const DeadLetterQuery = z.object({
  lead_id: Token.optional(),
  step: Step.optional(),
  limit: z.coerce
    .number({ error: `must be an integer from 1 to ${DEAD_LETTER_LIMIT_MAX}` })
    .int(`must be an integer from 1 to ${DEAD_LETTER_LIMIT_MAX}`)
    .min(1, `must be an integer from 1 to ${DEAD_LETTER_LIMIT_MAX}`)
    .max(DEAD_LETTER_LIMIT_MAX, `must be an integer from 1 to ${DEAD_LETTER_LIMIT_MAX}`)
    .optional(),
});

export const ReplayRequest = z.object({
  lead_id: Token.optional(),
  step: z.number().int().min(1).max(1000).optional(),
});

/**
 * Dead letters of the caller's tenant (the API key's), listed and replayed. Replaying publishes
 * each letter's due follow-up again with its idempotency key, so a receiver that got it already
 * drops it.
 */
export const deadLetterRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get("/ops/dead-letters", async (request) => {
    const tenant = tenantOf(request);
    const query = parseWith(DeadLetterQuery, request.query, "query");
    const { nc, topology } = deps.broker.handles();
    const items = await onBroker("listing dead letters", () =>
      listDeadLetters(nc, topology, {
        tenant,
        ...(query.lead_id !== undefined ? { leadId: query.lead_id } : {}),
        ...(query.step !== undefined ? { step: query.step } : {}),
        ...(query.limit !== undefined ? { limit: query.limit } : {}),
      }),
    );
    return { ok: true, data: { count: items.length, dead_letters: items } };
  });

  app.post("/ops/dead-letters/replay", async (request) => {
    const tenant = tenantOf(request);
    // No body, or an empty one, replays every dead letter of the tenant.
    const body = parseWith(ReplayRequest, request.body ?? {});
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
      ok: true,
      data: {
        replayed: replayed.length,
        /** At most DEAD_LETTER_LIMIT_MAX per call: when true, call again for the rest. */
        more: replayed.length >= DEAD_LETTER_LIMIT_MAX,
        items: replayed.map((item) => ({
          seq: item.seq,
          lead_id: item.event.data.lead_id,
          step: item.event.data.step,
          idempotency_key: item.event.data.idempotency_key,
        })),
      },
    };
  });
};
