import {
  LeadAccepted,
  LeadParams,
  LeadRequest,
  LeadView,
  makeEvent,
  okEnvelope,
  recipientZones,
  type StoredLead,
} from "@followup/contracts";
import { maskEmail, maskPhone } from "@followup/service-kit";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { v7 as uuidv7 } from "uuid";
import type { AppDeps, QueuedLead } from "../deps.js";
import { notFound, onBroker } from "../errors.js";
import { tenantOf } from "../http/request.js";
import { errorResponses, jsonResponse } from "../http/responses.js";
import { buildLeadView, type LeadSources, readLeadSources } from "../lead-view/index.js";
import { enrich, leadHour } from "../scoring/index.js";
import { getLead } from "./leads-store.js";
import { SOURCE } from "./publisher.js";

/** POST /v1/lead (accept, enrich, score, store, publish) and GET /v1/lead/:id (the lead view). */
export const leadRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const accepted = okEnvelope(LeadAccepted);
  app.post(
    "/v1/lead",
    {
      schema: {
        operationId: "createLead",
        tags: ["leads"],
        summary: "Accept a lead",
        description:
          "Enriches and scores the lead, stores it and publishes its lead.scored, which schedules its follow-ups. " +
          "The x-lead-queued response header says where it went: `published` (200), or `local` (202) when NATS " +
          "was unreachable and the lead waits in the durable local outbox, to be stored and published once NATS is back.",
        body: LeadRequest,
        response: {
          200: jsonResponse("The lead was stored and its lead.scored published", accepted),
          202: jsonResponse(
            "The lead waits in the local outbox (NATS unreachable); data.queued is `local`",
            accepted,
          ),
          ...errorResponses([400, 401, 413, 415, 429, 500, 503]),
        },
      },
    },
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
          // The zones send windows are read in; the phone number stays in the leads bucket.
          ...recipientZones(lead),
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
    {
      schema: {
        operationId: "getLead",
        tags: ["leads"],
        summary: "Read a lead",
        description:
          "The lead, whether the scheduler qualified it, its follow-ups (pending, due, delivered, failed, " +
          "cancelled) and its timeline, read from JetStream. A lead of another tenant is not found.",
        params: LeadParams,
        response: {
          200: jsonResponse("The lead view", okEnvelope(LeadView)),
          ...errorResponses([401, 404, 429, 500, 503]),
        },
      },
      config: { resource: "lead" },
    },
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
    replays: [],
    receipts: [],
    markers: [],
  };
}
