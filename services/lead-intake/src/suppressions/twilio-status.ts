import {
  encodeEvent,
  FollowupPlan,
  idempotencyKey,
  leadKey,
  makeEvent,
  type ProviderReport,
  reportMsgId,
  subjects,
} from "@followup/contracts";
import { readStatusCallbackRef } from "@followup/service-kit";
import type { FastifyPluginAsync, FastifyReply } from "fastify";
import { z } from "zod";
import type { AppDeps } from "../deps.js";
import { onBroker } from "../errors.js";
import { errorResponses } from "../http/responses.js";
import { EMPTY_TWIML } from "./inbound.js";
import { acceptTwilioForm, verifiedTwilioForm } from "./twilio-signature.js";

/** Twilio's final message statuses, as the follow-up's result reports them; the others are progress. */
const REPORTS: Record<string, ProviderReport> = {
  delivered: "delivered",
  undelivered: "undelivered",
  failed: "failed",
};

/**
 * `POST /hooks/twilio/status/:tenant`: Twilio's status callback for an SMS the dispatcher sent.
 * Its URL's query (lead, step, attempt, replays: twilioStatusCallbackUrl) names the follow-up,
 * and is covered by the signature. A final status (delivered, undelivered, failed) becomes a
 * `followup.result` of that step (a provider's report, not an attempt), once per attempt and
 * status (Twilio repeats callbacks: the message id drops the repeat); the lead view shows it.
 */
function answered(reply: FastifyReply): FastifyReply {
  return reply.code(200).type("text/xml; charset=utf-8").send(EMPTY_TWIML);
}

export const twilioStatusRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  acceptTwilioForm(app);
  app.post(
    "/hooks/twilio/status/:tenant",
    {
      schema: {
        operationId: "receiveTwilioStatus",
        tags: ["suppressions"],
        summary: "Status callback from Twilio for a sent SMS",
        description:
          "Twilio's status callback of an SMS a follow-up sent, form-encoded and signed (X-Twilio-Signature, with the " +
          "tenant's sms auth_token over PUBLIC_BASE_URL + this path + its query, which names the lead, step, attempt " +
          "and replay). MessageStatus delivered, undelivered or failed is recorded as the step's provider report " +
          "(followup.result); other statuses are acknowledged and ignored. Answers empty TwiML.",
        params: z.object({ tenant: z.string().describe("The tenant whose account sent the SMS") }),
        response: {
          200: {
            description: "Empty TwiML: recorded, or ignored",
            content: { "text/xml": { schema: z.string() } },
          },
          ...errorResponses([403, 404, 413, 415, 500, 503], {
            404: "not_found: the tenant in the path is not a tenant id",
            415: "unsupported_media_type: the body is not application/x-www-form-urlencoded",
          }),
        },
      },
    },
    async (request, reply): Promise<FastifyReply> => {
      const { tenant, form, query } = await verifiedTwilioForm(deps, request, "status");
      const report = REPORTS[form.get("MessageStatus") ?? ""];
      const ref = readStatusCallbackRef(query);
      if (report === undefined || ref === null) {
        if (ref === null) request.log.warn({ tenant }, "twilio_status_without_followup_ref");
        return answered(reply);
      }
      const handles = deps.broker.handles();
      const plan = await onBroker("reading the plan", async () => {
        const entry = await handles.plans.get(leadKey({ tenant, leadId: ref.leadId }));
        return entry === null || entry.operation !== "PUT" ? null : FollowupPlan.parse(entry.json());
      });
      const step = plan?.steps.find((s) => s.step === ref.step);
      if (!step) {
        request.log.warn({ tenant, lead_id: ref.leadId, step: ref.step }, "twilio_status_of_unknown_step");
        return answered(reply);
      }
      const sid = form.get("MessageSid");
      const code = form.get("ErrorCode");
      const event = makeEvent("followup.result.v1", {
        source: "/twilio-status",
        subject: `${ref.leadId}/${ref.step}`,
        tenant,
        time: deps.now(),
        data: {
          lead_id: ref.leadId,
          step: ref.step,
          delay_s: step.delay_s,
          due_at: step.due_at,
          idempotency_key: idempotencyKey({ tenant, leadId: ref.leadId, step: ref.step }),
          channel: "sms",
          attempt: ref.attempt,
          result: report,
          status_code: null,
          duration_ms: 0,
          provider: "twilio",
          ...(sid && /^[A-Za-z0-9]{1,64}$/.test(sid) ? { provider_message_id: sid } : {}),
          ...(code && /^\d{1,6}$/.test(code) ? { error: `twilio: error code ${code}` } : {}),
        },
      });
      const msgID = reportMsgId({ leadId: ref.leadId, step: ref.step }, ref.replays, ref.attempt, report);
      await onBroker("recording the status", () =>
        handles.js.publish(subjects.followupResult(tenant, ref.leadId, ref.step), encodeEvent(event), {
          msgID,
        }),
      );
      request.log.info(
        { tenant, lead_id: ref.leadId, step: ref.step, status: report },
        "twilio_status_recorded",
      );
      return answered(reply);
    },
  );
};
