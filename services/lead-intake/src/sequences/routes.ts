import {
  ConditionalHeaders,
  MAX_SEQUENCES_PER_TENANT,
  okEnvelope,
  Sequence,
  SequenceDeleted,
  SequenceList,
  SequenceParams,
  type SequenceView,
  SequenceView as SequenceViewSchema,
  type StoredSequence,
} from "@followup/contracts";
import type { FastifyReply } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { BrokerHandles } from "../broker.js";
import type { AppDeps } from "../deps.js";
import { HttpError, notFound, onBroker } from "../errors.js";
import { revisionCondition, tenantOf } from "../http/request.js";
import { errorResponses, jsonResponse } from "../http/responses.js";
import { deleteSequence, getSequence, listSequences, putSequence, type SequenceBucket } from "./store.js";

const TAG = "sequences";

/**
 * A sequence's name is the caller's choice, not an id it was given: one that breaks the rule is
 * a validation_error naming `name` and the rule, on every route (an unknown valid name is 404).
 */
const config = { invalidParams: "validation_error" } as const;

const ALREADY_PLANNED =
  "Changes what leads scored from now on get; follow-ups already planned keep the sequence they were planned with.";

function bucketOf(handles: BrokerHandles): SequenceBucket {
  return { kv: handles.sequences, jsm: handles.jsm, bucket: handles.topology.buckets.sequences.bucket };
}

function view(stored: StoredSequence): SequenceView {
  const { tenant: _tenant, ...rest } = stored;
  return rest;
}

/** The revision as an ETag: a strong entity tag, quoted. */
function withEtag(reply: FastifyReply, revision: number): void {
  reply.header("etag", `"${revision}"`);
}

function revisionMismatch(name: string, ifMatch: string, current: number | null): HttpError {
  const message =
    current === null
      ? `sequence ${name} does not exist, so If-Match ${ifMatch} cannot match; PUT it without If-Match to create it`
      : `sequence ${name} is at revision ${current}, not If-Match ${ifMatch}: read it again and re-apply the change`;
  return new HttpError(
    412,
    "revision_mismatch",
    message,
    [
      {
        path: "if-match",
        message: current === null ? "no current revision" : `current revision is ${current}`,
      },
    ],
    current === null ? {} : { etag: `"${current}"` },
  );
}

/** /v1/sequences: the caller's tenant's sequences, listed, read, created or replaced, deleted. */
export const sequenceRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const one = okEnvelope(SequenceViewSchema);

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
      const store = bucketOf(deps.broker.handles());
      const stored = await onBroker("listing sequences", () => listSequences(store, tenant));
      return { ok: true as const, data: { count: stored.length, sequences: stored.map(view) } };
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
      const { name } = request.params;
      const store = bucketOf(deps.broker.handles());
      const stored = await onBroker("reading the sequence", () => getSequence(store, tenant, name));
      if (stored === null) throw notFound("sequence");
      withEtag(reply, stored.revision);
      return { ok: true as const, data: view(stored) };
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
          `with the rule it broke; a template that does not exist yet is allowed. A tenant has at most ` +
          `${MAX_SEQUENCES_PER_TENANT} sequences (409 conflict for one more). ${ALREADY_PLANNED}`,
        params: SequenceParams,
        headers: ConditionalHeaders,
        body: Sequence,
        response: {
          200: jsonResponse("The sequence replaced one; its new revision is the ETag", one),
          201: jsonResponse("The sequence was created; its revision is the ETag", one),
          ...errorResponses([400, 401, 409, 412, 413, 415, 429, 500, 503], {
            400: "validation_error naming each bad field of the body, the name or If-Match, or invalid_json",
          }),
        },
      },
      config,
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const { name } = request.params;
      const ifMatch = request.headers["if-match"];
      const store = bucketOf(deps.broker.handles());
      const written = await onBroker("storing the sequence", () =>
        putSequence(store, tenant, name, request.body, revisionCondition(ifMatch), deps.now()),
      );
      if (written.status === "revision_mismatch") {
        throw revisionMismatch(name, ifMatch ?? "", written.current);
      }
      if (written.status === "too_many") {
        throw new HttpError(
          409,
          "conflict",
          `the tenant has ${written.limit} sequences, the most it may have: delete one before creating ${name}`,
        );
      }
      request.log.info(
        { tenant, sequence: name, revision: written.sequence.revision, status: written.status },
        "sequence_stored",
      );
      withEtag(reply, written.sequence.revision);
      reply.code(written.status === "created" ? 201 : 200);
      return { ok: true as const, data: view(written.sequence) };
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
      const store = bucketOf(deps.broker.handles());
      const deleted = await onBroker("deleting the sequence", () =>
        deleteSequence(store, tenant, name, revisionCondition(ifMatch)),
      );
      if (deleted.status === "absent") throw notFound("sequence");
      if (deleted.status === "revision_mismatch")
        throw revisionMismatch(name, ifMatch ?? "", deleted.current);
      request.log.info({ tenant, sequence: name }, "sequence_deleted");
      return { ok: true as const, data: { name, deleted: true as const } };
    },
  );
};
