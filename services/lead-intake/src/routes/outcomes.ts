import { makeEvent, OutcomeRequest, type RecordedOutcome, stopsFollowups } from "@followup/contracts";
import type { FastifyPluginAsync } from "fastify";
import type { AppDeps } from "../app.js";
import { BrokerUnavailableError, parseWith } from "../errors.js";
import { recordOutcome } from "../leads-store.js";
import { onBroker } from "../publisher.js";
import { leadIdOf, leadNotFound, SOURCE, tenantOf } from "./request.js";

/** POST /v1/lead/:id/outcome: record the outcome on the lead, then publish lead.outcome. */
export const outcomeRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.post("/v1/lead/:id/outcome", async (request) => {
    const tenant = tenantOf(request);
    const leadId = leadIdOf(request);
    const body = parseWith(OutcomeRequest, request.body);
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
    if (lead === null) throw leadNotFound();
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
      ok: true,
      data: { lead_id: leadId, outcome: body.outcome, recorded_at: recordedAt, stops_followups: stops },
    };
  });
};
