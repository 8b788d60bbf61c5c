import { normaliseAddress, smsKeywordOf, suppressionId } from "@followup/contracts";
import { maskPhone } from "@followup/service-kit";
import type { FastifyPluginAsync, FastifyReply } from "fastify";
import { z } from "zod";
import type { AppDeps } from "../deps.js";
import { onBroker } from "../errors.js";
import { errorResponses } from "../http/responses.js";
import { suppressionStore } from "./store.js";
import { acceptTwilioForm, verifiedTwilioForm } from "./twilio-signature.js";

/** TwiML that sends nothing back: Twilio itself confirms a STOP to the sender. */
export const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

/** Opt-outs lifted by the sender's START: their own, never one the tenant added by hand. */
const LIFTED_BY_START = new Set(["stop", "provider_opt_out"]);

/**
 * `POST /hooks/twilio/inbound/:tenant`: the SMS a lead sends to the tenant's number, as Twilio
 * posts it (form-encoded, signed with the tenant's auth token over the public URL: built from
 * PUBLIC_BASE_URL, never from the Host header). A body that is exactly an opt-out keyword
 * suppresses the sender's number for the tenant; START, UNSTOP or YES lifts that suppression.
 * Anything that keeps the signature from being checked (no PUBLIC_BASE_URL, no sms settings, no
 * auth token, no key to open it) is a 403, like a bad signature: nothing is acted on unverified.
 */
export const twilioInboundRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  acceptTwilioForm(app);
  app.post(
    "/hooks/twilio/inbound/:tenant",
    {
      schema: {
        operationId: "receiveTwilioInbound",
        tags: ["suppressions"],
        summary: "Inbound SMS from Twilio (STOP, START)",
        description:
          "Twilio's inbound-message webhook for the tenant's number, form-encoded and signed (X-Twilio-Signature, " +
          "with the tenant's sms auth_token over PUBLIC_BASE_URL + this path). A Body that is exactly STOP, STOPALL, " +
          "UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE or OPTOUT (any case, surrounding spaces ignored) suppresses the " +
          "sender's number; START, UNSTOP or YES lifts that suppression (not one added by hand). Answers empty TwiML.",
        params: z.object({ tenant: z.string().describe("The tenant whose number received the SMS") }),
        response: {
          200: { description: "Empty TwiML", content: { "text/xml": { schema: z.string() } } },
          ...errorResponses([403, 404, 413, 415, 500, 503], {
            404: "not_found: the tenant in the path is not a tenant id",
            415: "unsupported_media_type: the body is not application/x-www-form-urlencoded",
          }),
        },
      },
    },
    async (request, reply): Promise<FastifyReply> => {
      const { tenant } = request.params as { tenant: string };
      const { form } = await verifiedTwilioForm(deps, request, "inbound");
      const keyword = smsKeywordOf(form.get("Body") ?? "");
      const from = normaliseAddress("sms", form.get("From") ?? "");
      if (keyword !== null && from.ok) {
        const suppressions = suppressionStore(deps.broker.handles(), deps.channelSecrets);
        if (keyword === "opt_out") {
          const added = await onBroker("storing the suppression", () =>
            suppressions.add(
              tenant,
              { channel: "sms", address: from.address, reason: "stop", source: "twilio_inbound" },
              deps.now(),
            ),
          );
          request.log.info(
            { tenant, from: maskPhone(from.address), status: added.status },
            "sms_opt_out_received",
          );
        } else {
          const id = suppressionId("sms", from.address);
          const lifted = await onBroker("lifting the suppression", async () => {
            const existing = await suppressions.get(tenant, id);
            return (
              existing !== null &&
              LIFTED_BY_START.has(existing.reason) &&
              (await suppressions.remove(tenant, id))
            );
          });
          request.log.info({ tenant, from: maskPhone(from.address), lifted }, "sms_opt_in_received");
        }
      }
      return reply.code(200).type("text/xml; charset=utf-8").send(EMPTY_TWIML);
    },
  );
};
