import {
  EnrolmentAccepted,
  EnrolRequest,
  encodeEvent,
  enrolledIn,
  enrolmentMsgId,
  FollowupPlan,
  type LeadEnrolled,
  LeadParams,
  type LeadRef,
  type LeadUnenrolled,
  leadKey,
  makeEvent,
  okEnvelope,
  recipientZones,
  stopsFollowups,
  subjects,
} from "@followup/contracts";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { BrokerHandles } from "../broker.js";
import type { AppDeps } from "../deps.js";
import { BrokerUnavailableError, HttpError, notFound, onBroker } from "../errors.js";
import { tenantOf } from "../http/request.js";
import { errorResponses, jsonResponse } from "../http/responses.js";
import { sequenceStore } from "../sequences/index.js";
import { getLead } from "./leads-store.js";
import { SOURCE } from "./publisher.js";

/**
 * POST /v1/lead/:id/enroll and /unenroll. lead-intake does not write plans (the scheduler owns
 * them): it checks the request, then publishes a command event on LEADS, which the scheduler's
 * `scheduler-enrolments` durable applies to the plan in stream order.
 */
export const enrolmentRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const answer = okEnvelope(EnrolmentAccepted);

  app.post(
    "/v1/lead/:id/enroll",
    {
      schema: {
        operationId: "enrolLead",
        tags: ["leads"],
        summary: "Enrol a lead in a sequence by hand",
        description:
          "Appends the sequence's steps to the lead's follow-ups, whatever its score, their delays counted from " +
          "now and moved into the sequence's send window. Once per lead and sequence: when the lead's plan has the " +
          "sequence already the answer is 200 already_enrolled and nothing is added; otherwise 202 accepted (the " +
          "scheduler applies it within moments, and a repeated call adds nothing twice). A lead whose recorded " +
          "outcome stops the sequence (its stop_on) is 409.",
        params: LeadParams,
        body: EnrolRequest,
        response: {
          200: jsonResponse("The lead's plan has the sequence's steps already", answer),
          202: jsonResponse("The enrolment was published; the scheduler adds the steps", answer),
          ...errorResponses([400, 401, 404, 409, 413, 415, 429, 500, 503], {
            404: "not_found: no such lead, or no sequence of that name (the message names it)",
            409: "conflict: the lead's outcome stops this sequence",
            503: "service_unavailable: the broker is unreachable, or the lead still waits in the local outbox",
          }),
        },
      },
      config: { resource: "lead" },
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const ref: LeadRef = { tenant, leadId: request.params.id };
      const name = request.body.sequence;
      const handles = deps.broker.handles();
      const lead = await storedLead(deps, handles, ref);
      const sequence = await onBroker("reading the sequence", () => sequenceStore(handles).get(tenant, name));
      if (sequence === null) {
        throw new HttpError(404, "not_found", `sequence ${JSON.stringify(name)} not found`, [
          { path: "sequence", message: `no sequence named ${JSON.stringify(name)}` },
        ]);
      }
      const requestedAt = deps.now().toISOString();
      const plan = await onBroker("reading the plan", () => readPlan(handles, ref));
      if (plan && enrolledIn(plan, name)) {
        reply.code(200);
        return {
          ok: true as const,
          data: {
            lead_id: ref.leadId,
            sequence: name,
            status: "already_enrolled" as const,
            requested_at: requestedAt,
          },
        };
      }
      // The scheduler lifts an unenrolment's cancellation, never an outcome's.
      const outcome = lead.outcome?.outcome;
      const stoppedByOutcome = plan?.cancelled?.reason.startsWith("outcome:") === true;
      if (outcome !== undefined && (stopsFollowups(outcome, sequence.stop_on) || stoppedByOutcome)) {
        throw new HttpError(409, "conflict", `the lead's outcome ${outcome} stops its follow-ups`, [
          { path: "sequence", message: `the lead's outcome ${outcome} stops this sequence's steps` },
        ]);
      }
      const event: LeadEnrolled = makeEvent("lead.enrolled.v1", {
        source: SOURCE,
        subject: ref.leadId,
        tenant,
        data: {
          lead_id: ref.leadId,
          sequence: name,
          requested_at: requestedAt,
          lead_created_at: lead.created_at,
          pred_prob: lead.pred_prob,
          ...recipientZones(lead),
        },
      });
      // Once per lead and sequence within the stream's duplicate window; after it, the scheduler
      // finds the sequence in the plan and adds nothing.
      await publish(handles, subjects.leadEnrolled(tenant, ref.leadId), event, enrolmentMsgId(ref, name));
      request.log.info({ tenant, lead_id: ref.leadId, sequence: name }, "lead_enrolment_requested");
      reply.code(202);
      return {
        ok: true as const,
        data: { lead_id: ref.leadId, sequence: name, status: "accepted" as const, requested_at: requestedAt },
      };
    },
  );

  app.post(
    "/v1/lead/:id/unenroll",
    {
      schema: {
        operationId: "unenrolLead",
        tags: ["leads"],
        summary: "Stop a lead's pending follow-ups",
        description:
          "Cancels the lead's follow-ups that have not fired yet, as a stopping outcome does, without recording " +
          "an outcome: the lead can be enrolled again later. 202: published; the scheduler applies it.",
        params: LeadParams,
        response: {
          202: jsonResponse("The unenrolment was published; the scheduler cancels what is pending", answer),
          ...errorResponses([401, 404, 429, 500, 503], {
            503: "service_unavailable: the broker is unreachable, or the lead still waits in the local outbox",
          }),
        },
      },
      config: { resource: "lead" },
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const ref: LeadRef = { tenant, leadId: request.params.id };
      const handles = deps.broker.handles();
      await storedLead(deps, handles, ref);
      const requestedAt = deps.now().toISOString();
      const event: LeadUnenrolled = makeEvent("lead.unenrolled.v1", {
        source: SOURCE,
        subject: ref.leadId,
        tenant,
        data: { lead_id: ref.leadId, requested_at: requestedAt },
      });
      await publish(handles, subjects.leadUnenrolled(tenant, ref.leadId), event, event.id);
      request.log.info({ tenant, lead_id: ref.leadId }, "lead_unenrolment_requested");
      reply.code(202);
      return {
        ok: true as const,
        data: { lead_id: ref.leadId, status: "accepted" as const, requested_at: requestedAt },
      };
    },
  );
};

async function storedLead(deps: AppDeps, handles: BrokerHandles, ref: LeadRef) {
  if (deps.outbox?.holds(ref.tenant, ref.leadId)) {
    throw new BrokerUnavailableError("the lead is still in the local outbox, waiting to be stored");
  }
  const found = await onBroker("reading the lead", () => getLead(handles.leads, ref));
  if (found === null) throw notFound("lead");
  return found.lead;
}

/** The lead's plan as the scheduler stored it; null when none (or one this version cannot read). */
async function readPlan(handles: BrokerHandles, ref: LeadRef): Promise<FollowupPlan | null> {
  const entry = await handles.plans.get(leadKey(ref));
  if (entry === null || entry.operation !== "PUT") return null;
  const parsed = FollowupPlan.safeParse(entry.json());
  return parsed.success ? parsed.data : null;
}

async function publish(
  handles: BrokerHandles,
  subject: string,
  event: LeadEnrolled | LeadUnenrolled,
  msgID: string,
): Promise<void> {
  await onBroker("publishing the enrolment", () =>
    handles.js.publish(subject, encodeEvent(event), {
      msgID,
      expect: { streamName: handles.topology.streams.leads.name },
    }),
  );
}
