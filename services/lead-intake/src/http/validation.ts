import type { FastifySchemaCompiler } from "fastify";
import type { z } from "zod";

/**
 * Validates each part of a request (params, querystring, body) with the zod schema its route
 * declares, and hands fastify the ZodError itself rather than, as fastify-type-provider-zod's
 * compiler does, its issues re-shaped for ajv: the error handler (errors.ts) then names each
 * field exactly as describeIssues does for every other contract. Fastify adds the part as
 * `validationContext`. Serialising responses is the type provider's serializerCompiler.
 */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> =
  ({ schema }) =>
  (data) => {
    const result = schema.safeParse(data);
    return result.success ? { value: result.data } : { error: result.error };
  };
