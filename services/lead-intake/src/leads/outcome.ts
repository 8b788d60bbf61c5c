import {
  LeadParams,
  makeEvent,
  OutcomeAccepted,
  OutcomeRequest,
  okEnvelope,
  type RecordedOutcome,
  stopsFollowups,
} from "@followup/contracts";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { AppDeps } from "../deps.js";
import { BrokerUnavailableError, notFound, onBroker } from "../errors.js";
import { tenantOf } from "../http/request.js";
import { errorResponses, jsonResponse } from "../http/responses.js";
import { recordOutcome } from "./leads-store.js";
import { SOURCE } from "./publisher.js";

/** POST /v1/lead/:id/outcome: record the outcome on the lead, then publish lead.outcome. */
export const outcomeRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const schema = {
    operationId: "recordOutcome",
    tags: ["leads"],
    summary: "Record a lead's outcome",
    description:
      "Records the outcome on the lead, then publishes lead.outcome. booked, unqualified and spam stop the " +
      "lead's pending follow-ups (stops_followups). A lead still in the local outbox answers 503: retry.",
    params: LeadParams,
    body: OutcomeRequest,
    response: {
      200: jsonResponse("The outcome was recorded and lead.outcome published", okEnvelope(OutcomeAccepted)),
      ...errorResponses([400, 401, 404, 413, 415, 429, 500, 503], {
        503: "service_unavailable: the broker is unreachable, or the lead still waits in the local outbox (Retry-After says when to retry)",
      }),
    },
  };
  app.post("/v1/lead/:id/outcome", { schema, config: { resource: "lead" } }, async (request) => {
    const tenant = tenantOf(request);
    const leadId = request.params.id;
    const { body } = request;
    const recordedAt = deps.now().toISOString();
    const outcome: RecordedOutcome = {
      outcome: body.outcome,
      ...(body.notes !== undefined ? { notes: body.notes } : {}),
      recorded_at: recordedAt,
    };
    if (deps.outbox?.holds(tenant, leadId)) {
      // Not stored yet, so there is nothing to compare-and-set against: not a 404, a retry.
      throw new BrokerUnavailableError("the lead is still in the local outbox, waiting to be stored");
    }
    const { leads } = deps.broker.handles();
    const lead = await onBroker("recording the outcome", () =>
      recordOutcome(leads, { tenant, leadId }, outcome),
    );
    if (lead === null) throw notFound("lead");
    const stops = stopsFollowups(body.outcome);
    const event = makeEvent("lead.outcome.v1", {
      source: SOURCE,
      subject: leadId,
      tenant,
      data: {
        lead_id: leadId,
        outcome: body.outcome,
        ...(body.notes !== undefined ? { notes: body.notes } : {}),
        recorded_at: recordedAt,
        stops_followups: stops,
      },
    });
    await deps.publisher.publishLeadOutcome(lead, event);
    request.log.info(
      { lead_id: leadId, tenant, outcome: body.outcome, stops_followups: stops },
      "outcome_recorded",
    );
    return {
      ok: true as const,
      data: { lead_id: leadId, outcome: body.outcome, recorded_at: recordedAt, stops_followups: stops },
    };
  });
};
