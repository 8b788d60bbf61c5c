import { ModelRolledBack, ModelStatus, okEnvelope } from "@followup/contracts";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { AppDeps } from "../deps.js";
import { HttpError, onBroker } from "../errors.js";
import { tenantOf } from "../http/request.js";
import { errorResponses, jsonResponse } from "../http/responses.js";
import { ModelRegistry, NothingToRollBackError } from "./registry.js";

/**
 * The model registry: what every copy scores with, and the way back. The model is the
 * deployment's, not a tenant's: any key may look, only the tenants of MODEL_OPERATOR_TENANTS may
 * roll back.
 */
export const modelRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const registry = () => new ModelRegistry(deps.broker.handles().models);

  app.get(
    "/ops/model",
    {
      schema: {
        operationId: "getModel",
        tags: ["models"],
        summary: "The conversion model in use and its history",
        description:
          "The registry's current version (null: the committed model), the version this copy scores with, " +
          "the current model's evaluation and training window, and the promotions and rollbacks so far.",
        response: {
          200: jsonResponse("The model registry", okEnvelope(ModelStatus)),
          ...errorResponses([401, 429, 500, 503]),
        },
      },
    },
    async () => {
      const status = await onBroker("reading the model registry", async () => {
        const { pointer } = await registry().pointer();
        const record = pointer.version === null ? null : await registry().record(pointer.version);
        return {
          current: pointer.version,
          serving: deps.scorer.version,
          evaluation: record?.evaluation ?? null,
          window: record?.window ?? null,
          previous: pointer.previous,
          log: pointer.log,
        };
      });
      return { ok: true as const, data: status };
    },
  );

  app.post(
    "/ops/model/rollback",
    {
      schema: {
        operationId: "rollBackModel",
        tags: ["models"],
        summary: "Return to the previous model",
        description:
          "Makes the version that was current before this one current again (the committed model when " +
          "nothing was promoted before); every lead-intake copy scores with it within moments. Only the " +
          "tenants listed in MODEL_OPERATOR_TENANTS may: 403 for the others, 409 when there is nothing before.",
        response: {
          200: jsonResponse("The version left and the one returned to", okEnvelope(ModelRolledBack)),
          ...errorResponses([401, 403, 409, 429, 500, 503], {
            403: "forbidden: the caller's tenant is not in MODEL_OPERATOR_TENANTS",
          }),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      if (!(deps.config.MODEL_OPERATOR_TENANTS ?? []).includes(tenant)) {
        throw new HttpError(
          403,
          "forbidden",
          "the model is the deployment's: only the tenants of MODEL_OPERATOR_TENANTS may roll it back",
        );
      }
      try {
        const moved = await onBroker("rolling back the model", () => registry().rollback(deps.now()));
        request.log.warn({ tenant, ...moved }, "model_rolled_back");
        return { ok: true as const, data: moved };
      } catch (err) {
        if (err instanceof NothingToRollBackError) throw new HttpError(409, "conflict", err.message);
        throw err;
      }
    },
  );
};
