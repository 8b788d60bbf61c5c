import { describeIssues, type ErrorCode, type ErrorDetail, type ErrorEnvelope } from "@followup/contracts";
import { errorEnvelope as envelope } from "@followup/service-kit";
import { JetStreamError } from "@nats-io/jetstream";
import { errors as natsErrors } from "@nats-io/transport-node";
import { z } from "zod";

/** How long a client should wait before retrying when the broker is unavailable. */
export const RETRY_AFTER_UNAVAILABLE_S = 5;

/** An error a route or hook throws on purpose: its status, code and message reach the client as-is. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** NATS is not connected, JetStream did not answer in time, or the topology is not provisioned yet. */
export class BrokerUnavailableError extends Error {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`the message broker is unavailable: ${reason}`, options);
    this.name = "BrokerUnavailableError";
  }
}

const BROKER_ERRORS = [
  natsErrors.ClosedConnectionError,
  natsErrors.ConnectionError,
  natsErrors.DrainingConnectionError,
  natsErrors.InvalidOperationError,
  natsErrors.NoRespondersError,
  natsErrors.PermissionViolationError,
  natsErrors.ProtocolError,
  natsErrors.RequestError,
  natsErrors.TimeoutError,
  JetStreamError,
];

/** Whether an error comes from NATS or JetStream (not from our own code). */
export function isBrokerError(err: unknown): boolean {
  if (BROKER_ERRORS.some((type) => err instanceof type)) return true;
  // JetStreamApiError extends Error, not JetStreamError.
  return err instanceof Error && /^JetStream/.test(err.name);
}

/**
 * Runs a broker operation; a NATS or JetStream failure of it becomes a BrokerUnavailableError
 * (503) with the reason. Anything else (a bug, a broken record) stays what it is: a 500.
 */
export async function onBroker<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    if (!isBrokerError(err)) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new BrokerUnavailableError(`${what} failed: ${reason}`, { cause: err });
  }
}

/**
 * `<resource> not found`: the same answer for something that does not exist, something of
 * another tenant, and a path parameter that could name nothing.
 */
export function notFound(resource = "resource"): HttpError {
  return new HttpError(404, "not_found", `${resource} not found`);
}

/** A 400 naming each bad field and the rule it broke. */
export function validationError(error: z.ZodError, what = "request body"): HttpError {
  return fieldErrors(describeIssues(error), what);
}

/** A 400 with these details (field and rule), each repeated in the message. */
export function fieldErrors(details: ErrorDetail[], what = "request body"): HttpError {
  const summary = details.map((d) => `${d.path}: ${d.message}`).join("; ");
  return new HttpError(400, "validation_error", `invalid ${what}: ${summary}`, details);
}

/** Parses `value` with a contract's schema; throws a validation_error naming each bad field. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what?: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(result.error, what);
  return result.data;
}

export interface MappedError {
  status: number;
  code: ErrorCode;
  message: string;
  details?: ErrorDetail[];
  headers: Record<string, string>;
  /** Whether an operator must look at it (logged at error) rather than the client's doing. */
  internal: boolean;
}

const FASTIFY_CODES: Record<string, { status: number; code: ErrorCode; message: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: "unsupported_media_type",
    message: "unsupported content type; send the body as application/json",
  },
  FST_ERR_CTP_BODY_TOO_LARGE: {
    status: 413,
    code: "payload_too_large",
    message: "request body is larger than the limit",
  },
  FST_ERR_CTP_INVALID_JSON_BODY: {
    status: 400,
    code: "invalid_json",
    message: "request body is not valid JSON",
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    status: 400,
    code: "invalid_json",
    message: "request body is empty; expected a JSON object",
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: "invalid_json",
    message: "request body does not match its Content-Length",
  },
};

function statusCodeOf(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === "number" && status >= 400 && status <= 599 ? status : undefined;
}

/** What a request part that fails its route's schema is called in the message. */
const VALIDATED_PARTS: Record<string, string> = {
  body: "request body",
  params: "path",
  querystring: "query",
  headers: "headers",
};

/**
 * A request part that failed its route's schema (http/validation.ts hands fastify the ZodError,
 * fastify adds which part): a validation_error naming each field, except a path parameter, which
 * could name nothing that exists, so it is not found (`<resource> not found`, as when it is
 * looked up and missing), unless the route says its parameters are names the caller chooses.
 */
function schemaFailure(err: z.ZodError, limits: ErrorLimits): HttpError {
  const part = (err as { validationContext?: unknown }).validationContext;
  if (part === "params" && limits.invalidParams !== "validation_error") return notFound(limits.resource);
  return validationError(err, typeof part === "string" ? VALIDATED_PARTS[part] : undefined);
}

/** What the error handler knows of the route: the body limit, what its path names and how. */
export interface ErrorLimits {
  bodyLimitBytes: number;
  resource?: string;
  invalidParams?: "not_found" | "validation_error";
}

/**
 * The one mapping from anything thrown to what the client sees. Errors of our own carry their
 * status and code; a request that fails its route's schema, fastify's body-parsing errors and
 * the broker's failures get the contract's codes; anything else is an internal error whose
 * message is not shown (it is logged instead). `resource` is what the route's path names.
 */
export function mapError(thrown: unknown, limits: ErrorLimits): MappedError {
  const err = thrown instanceof z.ZodError ? schemaFailure(thrown, limits) : thrown;
  if (err instanceof HttpError) {
    return {
      status: err.status,
      code: err.code,
      message: err.message,
      ...(err.details ? { details: err.details } : {}),
      headers: err.headers,
      internal: false,
    };
  }
  if (err instanceof BrokerUnavailableError) {
    return {
      status: 503,
      code: "service_unavailable",
      message: `${err.message}; retry in ${RETRY_AFTER_UNAVAILABLE_S} s`,
      headers: { "retry-after": String(RETRY_AFTER_UNAVAILABLE_S) },
      internal: false,
    };
  }
  const fastifyCode = (err as { code?: unknown } | null)?.code;
  const known = typeof fastifyCode === "string" ? FASTIFY_CODES[fastifyCode] : undefined;
  if (known) {
    const message =
      known.code === "payload_too_large"
        ? `request body is larger than the limit of ${limits.bodyLimitBytes} bytes`
        : known.message;
    return { status: known.status, code: known.code, message, headers: {}, internal: false };
  }
  const status = statusCodeOf(err);
  if (status !== undefined && status < 500) {
    const code: ErrorCode =
      status === 404
        ? "not_found"
        : status === 413
          ? "payload_too_large"
          : status === 415
            ? "unsupported_media_type"
            : status === 429
              ? "rate_limited"
              : status === 401
                ? "unauthorized"
                : "validation_error";
    const message = err instanceof Error ? err.message : "bad request";
    return { status, code, message, headers: {}, internal: false };
  }
  return {
    status: 500,
    code: "internal_error",
    message: "internal error; it has been logged",
    headers: {},
    internal: true,
  };
}

/** The error envelope every failed response carries. */
export function errorEnvelope(mapped: MappedError, requestId: string): ErrorEnvelope {
  return envelope(mapped.code, mapped.message, requestId, mapped.details);
}
