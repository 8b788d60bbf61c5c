import { ErrorEnvelope } from "@followup/contracts";
import type { z } from "zod";

/**
 * A route's response as its schema declares it: what it means (the OpenAPI document's
 * description) and its JSON body (the schema the serializer encodes it with, and the document
 * shows). Fastify picks the schema by the reply's media type, application/json for every route.
 */
export function jsonResponse<S extends z.ZodType>(description: string, schema: S) {
  return { description, content: { "application/json": { schema } } };
}

/** What each status a route can fail with means; its body is always the ErrorEnvelope. */
const ERROR_MEANINGS = {
  400: "validation_error naming each bad field (details), or invalid_json",
  401: "unauthorized: the x-api-key is missing or unknown",
  403: "invalid_signature: the request's signature does not verify",
  404: "not_found: nothing of the caller's tenant has this id",
  409: "conflict: the request cannot be applied to what is stored (the message says why)",
  412: "revision_mismatch: If-Match names a revision that is not the current one (or there is none)",
  413: "payload_too_large: the body is larger than BODY_LIMIT_BYTES",
  415: "unsupported_media_type: the body is not application/json",
  429: "rate_limited: the key's requests per minute are spent (Retry-After says when to retry)",
  500: "internal_error: a fault of the service, logged with the request id",
  503: "service_unavailable: the message broker is unreachable (Retry-After says when to retry)",
} as const;

export type ErrorStatus = keyof typeof ERROR_MEANINGS;

type ErrorResponses<S extends ErrorStatus> = {
  [K in S]: ReturnType<typeof jsonResponse<typeof ErrorEnvelope>>;
};

/**
 * The error responses a route declares beside its successes, each the ErrorEnvelope the error
 * handler writes (which the serializer then checks against it). `overrides` says what a status
 * means where it means more than the usual (the hook's 401 is also a refused signature).
 */
export function errorResponses<S extends ErrorStatus>(
  statuses: readonly S[],
  overrides: Partial<Record<S, string>> = {},
): ErrorResponses<S> {
  const responses: Partial<Record<S, ReturnType<typeof jsonResponse<typeof ErrorEnvelope>>>> = {};
  for (const status of statuses) {
    responses[status] = jsonResponse(overrides[status] ?? ERROR_MEANINGS[status], ErrorEnvelope);
  }
  return responses as ErrorResponses<S>;
}
