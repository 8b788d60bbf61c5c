import type { FastifyRequest } from "fastify";
import { HttpError } from "../errors.js";

/** The authenticated caller's tenant; the auth hook has refused requests without one. */
export function tenantOf(request: FastifyRequest): string {
  if (request.caller === null) throw new HttpError(401, "unauthorized", "missing or invalid x-api-key");
  return request.caller.tenant;
}

/** What an If-Match header asks for: any current revision, or one of these. */
export type RevisionCondition = "any" | readonly number[];

/**
 * The condition of an If-Match that passed its route's ConditionalHeaders schema (revisions,
 * quoted or not, separated by commas, or `*`), or null without one.
 */
export function revisionCondition(ifMatch: string | undefined): RevisionCondition | null {
  if (ifMatch === undefined) return null;
  const trimmed = ifMatch.trim();
  if (trimmed === "*") return "any";
  return trimmed.split(",").map((part) => Number(part.trim().replace(/^"|"$/g, "")));
}
