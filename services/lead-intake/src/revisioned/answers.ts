import type { FastifyReply } from "fastify";
import { HttpError, notFound } from "../errors.js";
import type { RecordDeletion, RecordWrite, Revisioned } from "./store.js";

/**
 * What a revisioned record's routes answer, the same for every room that keeps one: the revision
 * as a strong ETag, 201 or 200, 412 revision_mismatch, 409 for one record too many.
 */

/** A record less its tenant; unlike Omit, it keeps the known fields of a loose record. */
export type WithoutTenant<T> = { [K in keyof T as K extends "tenant" ? never : K]: T[K] };

/** The record as the API shows it: less its tenant (the caller's), with its revision. */
export function viewOf<R extends { tenant: string }>(stored: Revisioned<R>): WithoutTenant<Revisioned<R>> {
  const { tenant: _tenant, ...rest } = stored;
  // The rest of a generic object is typed Omit<>, which TypeScript does not relate to the mapped type.
  return rest as unknown as WithoutTenant<Revisioned<R>>;
}

/** The revision as an ETag: a strong entity tag, quoted. */
export function withEtag(reply: FastifyReply, revision: number): void {
  reply.header("etag", `"${revision}"`);
}

function revisionMismatch(what: string, name: string, ifMatch: string, current: number | null): HttpError {
  const message =
    current === null
      ? `${what} ${name} does not exist, so If-Match ${ifMatch} cannot match; PUT it without If-Match to create it`
      : `${what} ${name} is at revision ${current}, not If-Match ${ifMatch}: read it again and re-apply the change`;
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

/**
 * The stored record of a PUT, its ETag and status (201 created, 200 replaced) set on the reply;
 * a mismatch (412) or one record too many (409) is thrown.
 */
export function answerWrite<R>(
  reply: FastifyReply,
  what: { one: string; many: string },
  name: string,
  ifMatch: string | undefined,
  written: RecordWrite<R>,
): Revisioned<R> {
  if (written.status === "revision_mismatch") {
    throw revisionMismatch(what.one, name, ifMatch ?? "", written.current);
  }
  if (written.status === "too_many") {
    throw new HttpError(
      409,
      "conflict",
      `the tenant has ${written.limit} ${what.many}, the most it may have: delete one before creating ${name}`,
    );
  }
  withEtag(reply, written.record.revision);
  reply.code(written.status === "created" ? 201 : 200);
  return written.record;
}

/** Throws what a DELETE that did not delete answers: 404 when absent, 412 on a mismatch. */
export function answerDeletion(
  what: string,
  name: string,
  ifMatch: string | undefined,
  deleted: RecordDeletion,
): void {
  if (deleted.status === "absent") throw notFound(what);
  if (deleted.status === "revision_mismatch")
    throw revisionMismatch(what, name, ifMatch ?? "", deleted.current);
}
