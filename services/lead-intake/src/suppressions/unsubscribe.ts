import { type StoredLead, suppressionId } from "@followup/contracts";
import { maskEmail, readUnsubscribeToken, verifyUnsubscribeToken } from "@followup/service-kit";
import type { FastifyPluginAsync, FastifyReply } from "fastify";
import { z } from "zod";
import type { AppDeps } from "../deps.js";
import { onBroker } from "../errors.js";
import { errorResponses } from "../http/responses.js";
import { getLead } from "../leads/index.js";
import { sendPage } from "./page.js";
import { suppressionStore } from "./store.js";

/** The body a mail client POSTs for a one-click unsubscribe (RFC 8058 section 3.1), exactly. */
export const ONE_CLICK_BODY = "List-Unsubscribe=One-Click";
const FORM = "application/x-www-form-urlencoded";

const NOT_VALID = {
  title: "This link is not valid",
  lines: ["It may be incomplete or out of date. Nothing was changed."],
};

/** The HTML failures (the error envelope is for API callers; a person clicked this link). */
const PAGES =
  "Failures are pages too: 404 for a link that is not valid (malformed, forged, or its lead's address " +
  "changed since), 400 for a POST whose body is not the one-click body; nothing is changed by either.";

const htmlPage = (description: string) => ({
  description,
  content: { "text/html": { schema: z.string() } },
});

/**
 * `/u/:token`, the one-click unsubscribe link of every e-mail (`List-Unsubscribe`): no API key,
 * the token (an HMAC of tenant, lead and address, provider-signatures.ts) is the authority. The
 * lead it names is read for its address, and the token checked against it, so a token for an
 * address the lead no longer has does not verify. GET only shows a page (link scanners fetch
 * links); POST with the exact RFC 8058 body suppresses. The form parser is this plugin's only.
 */
export const unsubscribeRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const secrets = deps.config.UNSUBSCRIBE_SECRET;
  app.addContentTypeParser(FORM, { parseAs: "string", bodyLimit: 1024 }, (_request, body, done) =>
    done(null, body),
  );

  /** The tenant, lead and address a token stands for, or null (then the page says it is not valid). */
  async function subjectOf(
    token: string,
  ): Promise<{ tenant: string; lead: StoredLead; address: string } | null> {
    if (secrets === undefined || secrets.length === 0) return null;
    const named = readUnsubscribeToken(token);
    if (named === null) return null;
    const handles = deps.broker.handles();
    const found = await onBroker("reading the lead", () => getLead(handles.leads, named));
    const address = found?.lead.email;
    if (!found || address === undefined) return null;
    if (!verifyUnsubscribeToken(secrets, token, { tenant: named.tenant, leadId: named.leadId, address }))
      return null;
    return { tenant: named.tenant, lead: found.lead, address: address.trim().toLowerCase() };
  }

  const params = z.object({ token: z.string().describe("The token of the link") });
  const schema = (operationId: string, summary: string, description: string) => ({
    operationId,
    tags: ["suppressions"],
    summary,
    description: `${description} ${PAGES}`,
    params,
    response: {
      200: htmlPage("The page"),
      ...errorResponses([503]),
    },
  });

  app.get(
    "/u/:token",
    {
      schema: schema(
        "showUnsubscribe",
        "The unsubscribe page",
        "A plain page (no script, CSP default-src 'none') that names the masked address and offers a button " +
          "that POSTs the one-click body. Showing it changes nothing.",
      ),
    },
    async (request, reply): Promise<FastifyReply> => {
      const { token } = request.params as { token: string };
      const subject = await subjectOf(token);
      if (subject === null) return sendPage(reply, 404, NOT_VALID);
      const existing = await onBroker("reading the suppression", () =>
        suppressionStore(deps.broker.handles(), deps.channelSecrets).get(
          subject.tenant,
          suppressionId("email", subject.address),
        ),
      );
      const who = maskEmail(subject.address) ?? "this address";
      if (existing !== null) {
        return sendPage(reply, 200, {
          title: "You are unsubscribed",
          lines: [`${who} gets no more of these e-mails.`],
        });
      }
      return sendPage(reply, 200, {
        title: "Unsubscribe",
        lines: [`Stop the follow-up e-mails to ${who}?`],
        confirm: "Unsubscribe",
      });
    },
  );

  app.post(
    "/u/:token",
    {
      schema: schema(
        "oneClickUnsubscribe",
        "One-click unsubscribe (RFC 8058)",
        `Suppresses the link's address for e-mail. The body must be exactly \`${ONE_CLICK_BODY}\`, form-encoded ` +
          "(what a mail client sends for List-Unsubscribe-Post, and what the page's button sends).",
      ),
    },
    async (request, reply): Promise<FastifyReply> => {
      const { token } = request.params as { token: string };
      if (request.body !== ONE_CLICK_BODY) {
        return sendPage(reply, 400, {
          title: "Nothing was changed",
          lines: [`An unsubscribe is a form POST of ${ONE_CLICK_BODY}.`],
        });
      }
      const subject = await subjectOf(token);
      if (subject === null) return sendPage(reply, 404, NOT_VALID);
      const added = await onBroker("storing the suppression", () =>
        suppressionStore(deps.broker.handles(), deps.channelSecrets).add(
          subject.tenant,
          { channel: "email", address: subject.address, reason: "unsubscribe", source: "one_click" },
          deps.now(),
        ),
      );
      request.log.info(
        {
          tenant: subject.tenant,
          lead_id: subject.lead.lead_id,
          suppression: added.record.id,
          status: added.status,
        },
        "email_unsubscribed",
      );
      return sendPage(reply, 200, {
        title: "You are unsubscribed",
        lines: [`${maskEmail(subject.address) ?? "This address"} gets no more of these e-mails.`],
      });
    },
  );
};
