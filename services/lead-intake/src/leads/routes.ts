import {
  LeadAccepted,
  LeadParams,
  LeadRequest,
  LeadView,
  makeEvent,
  okEnvelope,
  type StoredLead,
} from "@followup/contracts";
import { maskEmail, maskPhone } from "@followup/service-kit";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { v7 as uuidv7 } from "uuid";
import type { AppDeps, QueuedLead } from "../deps.js";
import { notFound, onBroker } from "../errors.js";
import { tenantOf } from "../http/request.js";
import { buildLeadView, type LeadSources, readLeadSources } from "../lead-view/index.js";
import { enrich, leadHour } from "../scoring/index.js";
import { getLead } from "./leads-store.js";
import { SOURCE } from "./publisher.js";

/** POST /v1/lead (accept, enrich, score, store, publish) and GET /v1/lead/:id (the lead view). */
export const leadRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const accepted = okEnvelope(LeadAccepted);
  app.post(
    "/v1/lead",
    { schema: { body: LeadRequest, response: { 200: accepted, 202: accepted } } },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const { body } = request;
      const createdAt = deps.now();
      const enrichment = enrich(body.details);
      const predProb = deps.scorer.predict({
        enrichment,
        detailsLength: body.details.length,
        hour: leadHour(createdAt, body.timezone),
      });
      // uuid v7: unguessable (74 random bits) and sortable by creation time.
      const leadId = uuidv7({ msecs: createdAt.getTime() });
      const lead: StoredLead = {
        lead_id: leadId,
        tenant,
        name: body.name,
        phone: body.phone,
        ...(body.email !== undefined ? { email: body.email } : {}),
        ...(body.timezone !== undefined ? { timezone: body.timezone } : {}),
        details: body.details,
        enrichment,
        pred_prob: predProb,
        model_version: deps.scorer.version,
        created_at: createdAt.toISOString(),
      };
      const event = makeEvent("lead.scored.v1", {
        source: SOURCE,
        subject: leadId,
        tenant,
        time: createdAt,
        data: {
          lead_id: leadId,
          created_at: lead.created_at,
          pred_prob: predProb,
          score: enrichment.score,
          intent: enrichment.intent,
          sentiment: enrichment.sentiment,
          urgency: enrichment.urgency,
          model_version: lead.model_version,
        },
      });
      const queued = await deps.publisher.publishLeadScored(lead, event);
      // 202: accepted into the durable local outbox, stored and published once NATS is back.
      reply.header("x-lead-queued", queued);
      if (queued === "local") reply.code(202);

      deps.metrics.accepted.inc();
      deps.metrics.predProb.observe(predProb);
      deps.metrics.enrich.inc({
        intent: enrichment.intent,
        urgency: enrichment.urgency,
        sentiment: enrichment.sentiment,
      });
      request.log.info(
        {
          lead_id: leadId,
          tenant,
          phone: maskPhone(lead.phone),
          ...(lead.email !== undefined ? { email: maskEmail(lead.email) } : {}),
          intent: enrichment.intent,
          sentiment: enrichment.sentiment,
          urgency: enrichment.urgency,
          pred_prob: predProb,
          model_version: lead.model_version,
          queued,
        },
        "lead_accepted",
      );
      return {
        ok: true as const,
        data: {
          lead_id: leadId,
          intent: enrichment.intent,
          sentiment: enrichment.sentiment,
          urgency: enrichment.urgency,
          score: enrichment.score,
          pred_prob: predProb,
          ...(queued === "local" ? { queued } : {}),
        },
      };
    },
  );

  app.get(
    "/v1/lead/:id",
    { schema: { params: LeadParams, response: { 200: okEnvelope(LeadView) } }, config: { resource: "lead" } },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const leadId = request.params.id;
      // Accepted but not yet stored: the outbox knows the lead and its lead.scored, nothing more.
      const queued = deps.outbox?.holds(tenant, leadId) ? await deps.outbox.find(tenant, leadId) : null;
      if (queued !== null) {
        reply.header("x-lead-queued", "local");
        return { ok: true as const, data: buildLeadView(outboxSources(queued)) };
      }
      const handles = deps.broker.handles();
      const sources = await onBroker("reading the lead", async () => {
        const found = await getLead(handles.leads, { tenant, leadId });
        return found && readLeadSources(handles, found.lead, request.log);
      });
      if (sources === null) throw notFound("lead");
      return { ok: true as const, data: buildLeadView(sources) };
    },
  );
};

/** The lead view's sources of a lead still in the outbox: the lead and its lead.scored. */
function outboxSources(entry: QueuedLead): LeadSources {
  return {
    lead: entry.lead,
    plan: null,
    leadEvents: [entry.event],
    results: [],
    deadLetters: [],
    receipts: [],
  };
}
