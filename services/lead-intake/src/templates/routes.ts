import {
  ConditionalHeaders,
  type ErrorDetail,
  MAX_TEMPLATES_PER_TENANT,
  okEnvelope,
  RenderedMessage,
  type StoredLead,
  Template,
  TemplateDeleted,
  TemplateList,
  TemplateParams,
  TemplatePreviewRequest,
  TemplateView,
} from "@followup/contracts";
import { checkTemplate, MessageRenderError, messageVariables, renderMessage } from "@followup/messages";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { AppDeps } from "../deps.js";
import { fieldErrors, notFound, onBroker } from "../errors.js";
import { revisionCondition, tenantOf } from "../http/request.js";
import { errorResponses, jsonResponse } from "../http/responses.js";
import { getLead } from "../leads/index.js";
import { answerDeletion, answerWrite, viewOf, withEtag } from "../revisioned/index.js";
import { templateStore } from "./store.js";

const TAG = "templates";
const WHAT = { one: "template", many: "templates" };

/** A template's name is the caller's choice: one that breaks the rule is 400 naming `name`. */
const config = { invalidParams: "validation_error" } as const;

const VARIABLES =
  "Variables: lead.name, lead.first_name, lead.email, lead.phone, lead.details, lead.intent, lead.urgency, " +
  'step, sequence, and unsubscribe_url in e-mail; `{{ lead.first_name | default: "there" }}` gives a fallback.';

/** The sample context of a preview: step 1 of a sequence called `preview`. */
const PREVIEW_SEQUENCE = "preview";
/** A link that goes nowhere (`.invalid` is reserved), where no PUBLIC_BASE_URL says where to. */
const PLACEHOLDER_BASE = "https://unsubscribe.invalid";

/** A MessageRenderError as a detail: the field, then where in it and why. */
function detailOf(problem: { field: string; line?: number; column?: number; message: string }): ErrorDetail {
  const where = problem.line === undefined ? "" : `line ${problem.line}, column ${problem.column}: `;
  return { path: problem.field, message: `${where}${problem.message}` };
}

/** /v1/templates: the caller's tenant's message templates, checked when saved, and their preview. */
export const templateRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const one = okEnvelope(TemplateView);
  const unsubscribeBase = (deps.config.PUBLIC_BASE_URL ?? PLACEHOLDER_BASE).replace(/\/+$/, "");

  app.get(
    "/v1/templates",
    {
      schema: {
        operationId: "listTemplates",
        tags: [TAG],
        summary: "List templates",
        description: "Every message template of the caller's tenant, by name, each with its revision.",
        response: {
          200: jsonResponse("The tenant's templates", okEnvelope(TemplateList)),
          ...errorResponses([401, 429, 500, 503]),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const store = templateStore(deps.broker.handles());
      const stored = await onBroker("listing templates", () => store.list(tenant));
      return { ok: true as const, data: { count: stored.length, templates: stored.map(viewOf) } };
    },
  );

  app.get(
    "/v1/templates/:name",
    {
      schema: {
        operationId: "getTemplate",
        tags: [TAG],
        summary: "Read a template",
        description:
          "The template and its revision, which the ETag header repeats (quoted): send it back as If-Match to " +
          "replace or delete exactly this revision. Another tenant's template is not found.",
        params: TemplateParams,
        response: {
          200: jsonResponse("The template", one),
          ...errorResponses([400, 401, 404, 429, 500, 503], {
            400: "validation_error: the name is not 1-64 characters of a-z, 0-9, '_' or '-'",
            404: "not_found: the caller's tenant has no template of this name",
          }),
        },
      },
      config,
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const store = templateStore(deps.broker.handles());
      const stored = await onBroker("reading the template", () => store.get(tenant, request.params.name));
      if (stored === null) throw notFound("template");
      withEtag(reply, stored.revision);
      return { ok: true as const, data: viewOf(stored) };
    },
  );

  app.put(
    "/v1/templates/:name",
    {
      schema: {
        operationId: "putTemplate",
        tags: [TAG],
        summary: "Create or replace a template",
        description:
          "Stores the Liquid template under its name: 201 when it is new, 200 when it replaces one; If-Match " +
          "(a revision, quoted or not, or *) replaces only that revision (412 revision_mismatch otherwise). " +
          "The template is rendered against a sample lead first: a syntax error, an unknown filter or " +
          "variable, or a text too long for its channel (an SMS has at most 1600 characters) is a 400 naming " +
          "the field (body, subject, html) with the line and column. An e-mail needs a subject; only e-mail " +
          `has subject and html, whose output is HTML-escaped. ${VARIABLES} A tenant has at most ` +
          `${MAX_TEMPLATES_PER_TENANT} templates (409 conflict for one more).`,
        params: TemplateParams,
        headers: ConditionalHeaders,
        body: Template,
        response: {
          200: jsonResponse("The template replaced one; its new revision is the ETag", one),
          201: jsonResponse("The template was created; its revision is the ETag", one),
          ...errorResponses([400, 401, 409, 412, 413, 415, 429, 500, 503], {
            400:
              "validation_error naming each bad field of the body (with the line and column of a template " +
              "error), the name or If-Match, or invalid_json",
          }),
        },
      },
      config,
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const { name } = request.params;
      const problems = checkTemplate(request.body);
      if (problems.length > 0) throw fieldErrors(problems.map(detailOf));
      const ifMatch = request.headers["if-match"];
      const store = templateStore(deps.broker.handles());
      const written = await onBroker("storing the template", () =>
        store.put(tenant, name, request.body, revisionCondition(ifMatch), deps.now()),
      );
      const stored = answerWrite(reply, WHAT, name, ifMatch, written);
      request.log.info(
        { tenant, template: name, revision: stored.revision, status: written.status },
        "template_stored",
      );
      return { ok: true as const, data: viewOf(stored) };
    },
  );

  app.delete(
    "/v1/templates/:name",
    {
      schema: {
        operationId: "deleteTemplate",
        tags: [TAG],
        summary: "Delete a template",
        description:
          "Deletes the template; with If-Match only the revision it names. A sequence that names it can no " +
          "longer be saved until it exists again.",
        params: TemplateParams,
        headers: ConditionalHeaders,
        response: {
          200: jsonResponse("The template was deleted", okEnvelope(TemplateDeleted)),
          ...errorResponses([400, 401, 404, 412, 429, 500, 503], {
            400: "validation_error: the name or If-Match breaks its rule",
            404: "not_found: the caller's tenant has no template of this name",
          }),
        },
      },
      config,
    },
    async (request) => {
      const tenant = tenantOf(request);
      const { name } = request.params;
      const ifMatch = request.headers["if-match"];
      const store = templateStore(deps.broker.handles());
      const deleted = await onBroker("deleting the template", () =>
        store.delete(tenant, name, revisionCondition(ifMatch)),
      );
      answerDeletion(WHAT.one, name, ifMatch, deleted);
      request.log.info({ tenant, template: name }, "template_deleted");
      return { ok: true as const, data: { name, deleted: true as const } };
    },
  );

  app.post(
    "/v1/templates/:name/preview",
    {
      schema: {
        operationId: "previewTemplate",
        tags: [TAG],
        summary: "Preview a template for a lead",
        description:
          "Renders the template for one of the tenant's leads, as step 1 of a sequence called `preview`, and " +
          "answers what its channel would send. The unsubscribe_url is built on PUBLIC_BASE_URL (a placeholder " +
          "without it). Another tenant's template or lead is not found; a template that cannot be rendered for " +
          "this lead (its text too long for the channel) is 400 naming the field.",
        params: TemplateParams,
        body: TemplatePreviewRequest,
        response: {
          200: jsonResponse("The message the template makes for the lead", okEnvelope(RenderedMessage)),
          ...errorResponses([400, 401, 404, 413, 415, 429, 500, 503], {
            400: "validation_error: the name, the lead_id, or the template rendered for this lead (the field named)",
            404: "not_found: the caller's tenant has no template of this name, or no lead of this id",
          }),
        },
      },
      config,
    },
    async (request) => {
      const tenant = tenantOf(request);
      const { name } = request.params;
      const leadId = request.body.lead_id;
      const handles = deps.broker.handles();
      const [template, stored] = await onBroker("reading the template and the lead", () =>
        Promise.all([templateStore(handles).get(tenant, name), getLead(handles.leads, { tenant, leadId })]),
      );
      if (template === null) throw notFound("template");
      // A lead accepted while JetStream was away waits in the outbox, not yet in the bucket.
      const lead: StoredLead | undefined = stored?.lead ?? (await deps.outbox?.find(tenant, leadId))?.lead;
      if (lead === undefined) throw notFound("lead");
      const variables = messageVariables(lead, {
        step: 1,
        sequence: PREVIEW_SEQUENCE,
        ...(template.channel === "email" ? { unsubscribeUrl: `${unsubscribeBase}/unsubscribe/preview` } : {}),
      });
      try {
        return { ok: true as const, data: renderMessage(template, variables) };
      } catch (err) {
        if (!(err instanceof MessageRenderError)) throw err;
        const detail = detailOf({ field: err.field, ...err.position, message: err.reason });
        throw fieldErrors([detail], `template ${name} for lead ${leadId}`);
      }
    },
  );
};
