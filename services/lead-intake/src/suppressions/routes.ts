import {
  normaliseAddress,
  okEnvelope,
  SuppressionDeleted,
  SuppressionList,
  SuppressionParams,
  SuppressionQuery,
  SuppressionRequest,
  SuppressionView,
  suppressionId,
} from "@followup/contracts";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { AppDeps } from "../deps.js";
import { notFound, onBroker } from "../errors.js";
import { tenantOf } from "../http/request.js";
import { errorResponses, jsonResponse } from "../http/responses.js";
import { suppressionStore } from "./store.js";

const TAG = "suppressions";

const WHAT_IT_DOES =
  "A suppressed address gets no follow-up on its channel (the dispatcher checks it before every send). The " +
  "key of a suppression is the SHA-256 of channel and normalised address (e-mail lower-cased, phone in E.164), " +
  "its id; the address itself is stored sealed.";

/** /v1/suppressions: the caller's tenant's suppressed addresses, searched by address, added by hand, lifted. */
export const suppressionRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const store = () => suppressionStore(deps.broker.handles(), deps.channelSecrets);

  app.get(
    "/v1/suppressions",
    {
      schema: {
        operationId: "listSuppressions",
        tags: [TAG],
        summary: "List or find suppressions",
        description:
          "The tenant's suppressions in the order they were added, at most `limit` (`more` says there are others); with " +
          `channel and address, only that address's (hashed here: the address is not a key). ${WHAT_IT_DOES}`,
        querystring: SuppressionQuery,
        response: {
          200: jsonResponse("The tenant's suppressions", okEnvelope(SuppressionList)),
          ...errorResponses([400, 401, 429, 500, 503], {
            400: "validation_error naming channel, address or limit",
          }),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const { channel, address, limit } = request.query;
      const suppressions = store();
      if (channel !== undefined && address !== undefined) {
        const found = await onBroker("reading the suppression", () =>
          suppressions.get(tenant, suppressionId(channel, address)),
        );
        const views = found ? [suppressions.view(found)] : [];
        return { ok: true as const, data: { count: views.length, more: false, suppressions: views } };
      }
      const { records, more } = await onBroker("listing suppressions", () =>
        suppressions.list(tenant, limit),
      );
      const views = records
        .filter((r) => channel === undefined || r.channel === channel)
        .map((r) => suppressions.view(r));
      return { ok: true as const, data: { count: views.length, more, suppressions: views } };
    },
  );

  app.post(
    "/v1/suppressions",
    {
      schema: {
        operationId: "addSuppression",
        tags: [TAG],
        summary: "Suppress an address",
        description: `Suppresses the address on its channel (reason manual): 201, or 200 with the suppression it has already. ${WHAT_IT_DOES}`,
        body: SuppressionRequest,
        response: {
          200: jsonResponse("The address was suppressed already", okEnvelope(SuppressionView)),
          201: jsonResponse("The address is suppressed", okEnvelope(SuppressionView)),
          ...errorResponses([400, 401, 413, 415, 429, 500, 503], {
            400: "validation_error naming channel or address, or invalid_json",
          }),
        },
      },
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const { channel } = request.body;
      const normalised = normaliseAddress(channel, request.body.address);
      // The schema refused a bad address already.
      const address = normalised.ok ? normalised.address : request.body.address;
      const suppressions = store();
      const added = await onBroker("storing the suppression", () =>
        suppressions.add(tenant, { channel, address, reason: "manual", source: "api" }, deps.now()),
      );
      request.log.info(
        { tenant, channel, suppression: added.record.id, status: added.status },
        "suppression_added",
      );
      reply.code(added.status === "created" ? 201 : 200);
      return { ok: true as const, data: suppressions.view(added.record) };
    },
  );

  app.delete(
    "/v1/suppressions/:id",
    {
      schema: {
        operationId: "deleteSuppression",
        tags: [TAG],
        summary: "Lift a suppression",
        description:
          "The address may be contacted on its channel again. Another tenant's suppression is not found.",
        params: SuppressionParams,
        response: {
          200: jsonResponse("The suppression was lifted", okEnvelope(SuppressionDeleted)),
          ...errorResponses([401, 404, 429, 500, 503], {
            404: "not_found: the caller's tenant has no suppression of this id",
          }),
        },
      },
      config: { resource: "suppression" },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const { id } = request.params;
      const removed = await onBroker("deleting the suppression", () => store().remove(tenant, id));
      if (!removed) throw notFound("suppression");
      request.log.info({ tenant, suppression: id }, "suppression_deleted");
      return { ok: true as const, data: { id, deleted: true as const } };
    },
  );
};
