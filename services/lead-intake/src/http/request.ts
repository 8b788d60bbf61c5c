import type { FastifyRequest } from "fastify";
import { HttpError } from "../errors.js";

/** The authenticated caller's tenant; the auth hook has refused requests without one. */
export function tenantOf(request: FastifyRequest): string {
  if (request.caller === null) throw new HttpError(401, "unauthorized", "missing or invalid x-api-key");
  return request.caller.tenant;
}
