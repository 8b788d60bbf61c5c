import { isValidToken } from "@followup/contracts";
import type { FastifyRequest } from "fastify";
import { HttpError } from "../errors.js";

/** The authenticated caller's tenant; the auth hook has refused requests without one. */
export function tenantOf(request: FastifyRequest): string {
  if (request.caller === null) throw new HttpError(401, "unauthorized", "missing or invalid x-api-key");
  return request.caller.tenant;
}

/** The lead id of the URL; one that is not a valid token cannot exist, so it is not found. */
export function leadIdOf(request: FastifyRequest): string {
  const { id } = request.params as { id?: unknown };
  if (!isValidToken(id)) throw leadNotFound();
  return id;
}

/** The same answer for a lead that does not exist and a lead of another tenant. */
export function leadNotFound(): HttpError {
  return new HttpError(404, "not_found", "lead not found");
}

/** The `source` of every event lead-intake publishes. */
export const SOURCE = "/lead-intake";
