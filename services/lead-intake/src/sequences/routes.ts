import {
  ConditionalHeaders,
  MAX_SEQUENCES_PER_TENANT,
  okEnvelope,
  Sequence,
  SequenceDeleted,
  SequenceList,
  SequenceParams,
  SequenceView,
} from "@followup/contracts";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { AppDeps } from "../deps.js";
import { fieldErrors, notFound, onBroker } from "../errors.js";
import { revisionCondition, tenantOf } from "../http/request.js";
import { errorResponses, jsonResponse } from "../http/responses.js";
import { answerDeletion, answerWrite, viewOf, withEtag } from "../revisioned/index.js";
import { stepTemplateProblems, templateStore } from "../templates/index.js";
import { sequenceStore } from "./store.js";

const TAG = "sequences";
const WHAT = { one: "sequence", many: "sequences" };

/**
 * A sequence's name is the caller's choice, not an id it was given: one that breaks the rule is
 * a validation_error naming `name` and the rule, on every route (an unknown valid name is 404).
 */
const config = { invalidParams: "validation_error" } as const;

const ALREADY_PLANNED =
  "Changes what leads scored from now on get; follow-ups already planned keep the sequence they were planned with.";

/** /v1/sequences: the caller's tenant's sequences, listed, read, created or replaced, deleted. */
export const sequenceRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const one = okEnvelope(SequenceView);

  app.get(
    "/v1/sequences",
    {
      schema: {
        operationId: "listSequences",
        tags: [TAG],
        summary: "List sequences",
        description: "Every sequence of the caller's tenant, by name, each with its revision.",
        response: {
          200: jsonResponse("The tenant's sequences", okEnvelope(SequenceList)),
          ...errorResponses([401, 429, 500, 503]),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const store = sequenceStore(deps.broker.handles());
      const stored = await onBroker("listing sequences", () => store.list(tenant));
      return { ok: true as const, data: { count: stored.length, sequences: stored.map(viewOf) } };
    },
  );

  app.get(
    "/v1/sequences/:name",
    {
      schema: {
        operationId: "getSequence",
        tags: [TAG],
        summary: "Read a sequence",
        description:
          "The sequence and its revision, which the ETag header repeats (quoted): send it back as If-Match to " +
          "replace or delete exactly this revision. Another tenant's sequence is not found.",
        params: SequenceParams,
        response: {
          200: jsonResponse("The sequence", one),
          ...errorResponses([400, 401, 404, 429, 500, 503], {
            400: "validation_error: the name is not 1-64 characters of a-z, 0-9, '_' or '-'",
            404: "not_found: the caller's tenant has no sequence of this name",
          }),
        },
      },
      config,
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const store = sequenceStore(deps.broker.handles());
      const stored = await onBroker("reading the sequence", () => store.get(tenant, request.params.name));
      if (stored === null) throw notFound("sequence");
      withEtag(reply, stored.revision);
      return { ok: true as const, data: viewOf(stored) };
    },
  );

  app.put(
    "/v1/sequences/:name",
    {
      schema: {
        operationId: "putSequence",
        tags: [TAG],
        summary: "Create or replace a sequence",
        description:
          "Stores the sequence under its name: 201 when it is new, 200 when it replaces one. With If-Match " +
          "(a revision, quoted or not, or *) it replaces only that revision, so two operators editing at once " +
          "never overwrite each other: the one who is late gets 412 revision_mismatch. Every bad field is named " +
          `with the rule it broke; a step's template must exist (PUT /v1/templates) and be written for the ` +
          `step's channel (400 naming steps.<i>.template). A tenant has at most ` +
          `${MAX_SEQUENCES_PER_TENANT} sequences (409 conflict for one more). ${ALREADY_PLANNED}`,
        params: SequenceParams,
        headers: ConditionalHeaders,
        body: Sequence,
        response: {
          200: jsonResponse("The sequence replaced one; its new revision is the ETag", one),
          201: jsonResponse("The sequence was created; its revision is the ETag", one),
          ...errorResponses([400, 401, 409, 412, 413, 415, 429, 500, 503], {
            400:
              "validation_error naming each bad field of the body (a step's missing template or one of another " +
              "channel too), the name or If-Match, or invalid_json",
          }),
        },
      },
      config,
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const { name } = request.params;
      const ifMatch = request.headers["if-match"];
      const handles = deps.broker.handles();
      const problems = await onBroker("reading the steps' templates", () =>
        stepTemplateProblems(templateStore(handles), tenant, request.body.steps),
      );
      if (problems.length > 0) throw fieldErrors(problems);
      const written = await onBroker("storing the sequence", () =>
        sequenceStore(handles).put(tenant, name, request.body, revisionCondition(ifMatch), deps.now()),
      );
      const stored = answerWrite(reply, WHAT, name, ifMatch, written);
      request.log.info(
        { tenant, sequence: name, revision: stored.revision, status: written.status },
        "sequence_stored",
      );
      return { ok: true as const, data: viewOf(stored) };
    },
  );

  app.delete(
    "/v1/sequences/:name",
    {
      schema: {
        operationId: "deleteSequence",
        tags: [TAG],
        summary: "Delete a sequence",
        description: `Deletes the sequence; with If-Match only the revision it names. ${ALREADY_PLANNED}`,
        params: SequenceParams,
        headers: ConditionalHeaders,
        response: {
          200: jsonResponse("The sequence was deleted", okEnvelope(SequenceDeleted)),
          ...errorResponses([400, 401, 404, 412, 429, 500, 503], {
            400: "validation_error: the name or If-Match breaks its rule",
            404: "not_found: the caller's tenant has no sequence of this name",
          }),
        },
      },
      config,
    },
    async (request) => {
      const tenant = tenantOf(request);
      const { name } = request.params;
      const ifMatch = request.headers["if-match"];
      const store = sequenceStore(deps.broker.handles());
      const deleted = await onBroker("deleting the sequence", () =>
        store.delete(tenant, name, revisionCondition(ifMatch)),
      );
      answerDeletion(WHAT.one, name, ifMatch, deleted);
      request.log.info({ tenant, sequence: name }, "sequence_deleted");
      return { ok: true as const, data: { name, deleted: true as const } };
    },
  );
};
