import { HookAck, HookPayload, type HookReceipt } from "@followup/contracts";
import { DEFAULT_TOLERANCE_SECONDS, verifyWebhook } from "@followup/service-kit";
import type { FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { AppDeps } from "../deps.js";
import { HttpError, onBroker } from "../errors.js";
import { errorResponses, jsonResponse } from "../http/responses.js";
import { receiptKey, recordReceipt } from "./receipts.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Who the hook's caller is, decided before its body is validated. */
    hookAuth: HookAuth | null;
  }
}

type HookAuth =
  | { auth: "signature"; webhookId: string }
  | { auth: "api_key"; tenant: string; webhookId?: string };

const HOOK_ACK: HookAck = { ok: true, message: "Follow-up hook received" };
const MAX_WEBHOOK_ID = 256;

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Why a signed call was refused, in words an operator can act on. */
function signatureRefusal(request: FastifyRequest, reason: string, now: Date): HttpError {
  if (reason === "timestamp_out_of_tolerance") {
    const skew = Math.floor(now.getTime() / 1000) - Number(header(request, "webhook-timestamp"));
    const message =
      skew > 0
        ? `webhook-timestamp is ${skew} s old; at most ${DEFAULT_TOLERANCE_SECONDS} s are accepted (a replayed or delayed call)`
        : `webhook-timestamp is ${-skew} s in the future; at most ${DEFAULT_TOLERANCE_SECONDS} s are accepted (check the sender's clock)`;
    return new HttpError(401, "invalid_signature", message);
  }
  const messages: Record<string, string> = {
    missing_headers: "a signed call needs webhook-id, webhook-timestamp and webhook-signature",
    bad_timestamp: "webhook-timestamp must be whole seconds since the epoch",
    bad_signature: "webhook-signature does not match the body (wrong secret, or the body was changed)",
  };
  return new HttpError(401, "invalid_signature", messages[reason] ?? "invalid webhook signature");
}

/**
 * A Standard Webhooks signature made with FOLLOWUP_HOOK_SECRET, or, as the system this replaces
 * accepted, a valid x-api-key. A valid key is enough even beside a failing signature.
 */
function authenticate(request: FastifyRequest, deps: AppDeps): HookAuth {
  const now = deps.now();
  const signed = header(request, "webhook-signature") !== undefined;
  let refusal: HttpError | undefined;
  if (signed && deps.hookKey) {
    const verdict = verifyWebhook(deps.hookKey, request.headers as never, request.rawBody ?? "", { now });
    if (verdict.ok) return { auth: "signature", webhookId: verdict.id };
    refusal = signatureRefusal(request, verdict.reason, now);
  } else if (signed) {
    refusal = new HttpError(
      401,
      "invalid_signature",
      "signed calls cannot be verified here: FOLLOWUP_HOOK_SECRET is not configured",
    );
  }
  if (request.caller) {
    const webhookId = header(request, "webhook-id");
    return { auth: "api_key", tenant: request.caller.tenant, ...(webhookId ? { webhookId } : {}) };
  }
  throw (
    refusal ?? new HttpError(401, "unauthorized", "missing or invalid x-api-key, and no webhook signature")
  );
}

/**
 * POST /ops/followup-hook: the default receiver of follow-ups. Records each once per webhook-id
 * (a KV create in hook_receipts: a replay finds the key and is acknowledged without a second
 * record) and answers exactly what the system it replaces answered.
 */
export const hookRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  app.decorateRequest("hookAuth", null);
  app.post(
    "/ops/followup-hook",
    {
      schema: {
        operationId: "receiveHook",
        tags: ["hook"],
        summary: "Receive a follow-up (the default hook receiver)",
        description:
          "Records each follow-up once per webhook-id and answers exactly what the system it replaces answered. " +
          "Two ways in: a Standard Webhooks signature (webhook-id, webhook-timestamp, webhook-signature headers, " +
          "signed with FOLLOWUP_HOOK_SECRET; the body must name its tenant), as the dispatcher calls it; or an " +
          "x-api-key, whose tenant the body may repeat but not contradict. A valid key is enough even beside a " +
          "failing signature. A replayed webhook-id is acknowledged without a second record. Not rate limited.",
        body: HookPayload,
        response: {
          200: jsonResponse("The follow-up is recorded (or was already)", HookAck),
          ...errorResponses([400, 401, 413, 415, 500, 503], {
            400: "validation_error naming each bad field (details), or invalid_json; also a signed call without a tenant, or a tenant other than the key's",
            401: "unauthorized (no valid x-api-key and no signature) or invalid_signature (the signature, its timestamp or its headers are refused)",
          }),
        },
      },
      // Not rate limited: its caller is the dispatcher, whose pace is bounded by its own concurrency.
      config: { auth: "hook", rawBody: true, rateLimit: false },
      // Before the body is validated: an unauthenticated caller learns nothing about its body.
      preValidation: async (request) => {
        request.hookAuth = authenticate(request, deps);
      },
    },
    async (request) => {
      const auth = request.hookAuth!;
      const payload = request.body;
      let tenant: string;
      if (auth.auth === "signature") {
        if (payload.tenant === undefined) {
          throw new HttpError(400, "validation_error", "tenant: a signed call must name its tenant", [
            { path: "tenant", message: "is required for a signed call" },
          ]);
        }
        tenant = payload.tenant;
      } else {
        if (payload.tenant !== undefined && payload.tenant !== auth.tenant) {
          throw new HttpError(400, "validation_error", "tenant: must be the API key's tenant", [
            { path: "tenant", message: "must be the API key's tenant" },
          ]);
        }
        tenant = auth.tenant;
      }
      const webhookId = auth.webhookId ?? `${tenant}:${payload.lead_id}:${payload.strategy}`;
      if (webhookId.length > MAX_WEBHOOK_ID) {
        throw new HttpError(
          400,
          "validation_error",
          `webhook-id: must be at most ${MAX_WEBHOOK_ID} characters`,
          [{ path: "webhook-id", message: `must be at most ${MAX_WEBHOOK_ID} characters` }],
        );
      }
      const receipt: HookReceipt = {
        webhook_id: webhookId,
        tenant,
        lead_id: payload.lead_id,
        ...(payload.step !== undefined ? { step: payload.step } : {}),
        strategy: payload.strategy,
        ...(payload.attempt !== undefined ? { attempt: payload.attempt } : {}),
        received_at: deps.now().toISOString(),
        auth: auth.auth,
      };
      const { receipts } = deps.broker.handles();
      const key = receiptKey(tenant, payload.lead_id, webhookId);
      const duplicate = await onBroker("recording the hook receipt", () =>
        recordReceipt(receipts, key, receipt),
      );
      deps.metrics.hooks.inc({ auth: auth.auth, duplicate: String(duplicate) });
      request.log.info(
        { tenant, lead_id: payload.lead_id, step: payload.step, auth: auth.auth, duplicate },
        "followup_hook_received",
      );
      return HOOK_ACK;
    },
  );
};
