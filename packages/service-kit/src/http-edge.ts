import { randomUUID } from "node:crypto";
import { type IncomingMessage, maxHeaderSize, type Server, STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { ErrorCode, ErrorDetail, ErrorEnvelope } from "@followup/contracts";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyHttpOptions,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from "fastify";
import { ConfigError, type HttpLimits, httpEnv, loadConfig } from "./config.js";

/**
 * The edge every service's HTTP server shares: its limits (slow clients are cut off, kept-alive
 * connections closed), the headers of every response, and the error envelope for what fails
 * before a route runs, down to a request Node's parser refuses, answered on the raw socket.
 */

/** The body of every failed response of every service. */
export function errorEnvelope(
  code: ErrorCode,
  message: string,
  requestId: string,
  details?: ErrorDetail[],
): ErrorEnvelope {
  return { ok: false, error: { code, message, ...(details ? { details } : {}) }, request_id: requestId };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's x-request-id when it is a sane token of at most 128 characters, else a new one. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers["x-request-id"];
  return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
}

/** Headers on every response, the raw ones written by clientError included. */
const EDGE_HEADERS = { "x-content-type-options": "nosniff" } as const;

type ServerOptions = FastifyServerOptions & { loggerInstance?: FastifyBaseLogger };

/**
 * A fastify server with the edge: `limits` (HTTP_* variables; unset ones take their defaults)
 * and `options` (the service's own: logger, body limit, ...). Register the routes on it.
 */
export function createHttpServer(limits: Partial<HttpLimits>, options: ServerOptions = {}): FastifyInstance {
  const settings = httpLimitsOf(limits);
  const app = Fastify({ ...options, ...edgeOptions(settings) }) as unknown as FastifyInstance;
  const served = new WeakMap<object, number>();
  // First of all hooks, so that a hook or handler that fails later still answers with these.
  app.addHook("onRequest", async (request, reply) => {
    reply.headers({ ...EDGE_HEADERS, "x-request-id": request.id });
    const max = settings.HTTP_MAX_REQUESTS_PER_SOCKET;
    if (max > 0) {
      // Not Node's maxRequestsPerSocket: past it Node answers a bare 503 of its own.
      const count = (served.get(request.raw.socket) ?? 0) + 1;
      served.set(request.raw.socket, count);
      if (count >= max) reply.header("connection", "close");
    }
    // Node's own check (requireHostHeader) answers a bare 400; this one answers the envelope.
    if (request.raw.httpVersion === "1.1" && request.headers.host === undefined) {
      reply.code(400).header("connection", "close");
      return reply.send(
        errorEnvelope("bad_request", "missing Host header (required in HTTP/1.1)", request.id),
      );
    }
  });
  return app;
}

/** `limits` over the defaults; throws ConfigError when the headers may take longer than the whole request. */
export function httpLimitsOf(limits: Partial<HttpLimits>): HttpLimits {
  const given = Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== undefined));
  const settings: HttpLimits = { ...loadConfig(httpEnv, {}), ...given };
  if (settings.HTTP_HEADERS_TIMEOUT_MS > settings.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError([
      {
        variable: "HTTP_HEADERS_TIMEOUT_MS",
        message: `expected at most HTTP_REQUEST_TIMEOUT_MS (${settings.HTTP_REQUEST_TIMEOUT_MS}); got ${settings.HTTP_HEADERS_TIMEOUT_MS}`,
      },
    ]);
  }
  return settings;
}

function edgeOptions(settings: HttpLimits): FastifyHttpOptions<Server> {
  const headersTimeout = settings.HTTP_HEADERS_TIMEOUT_MS;
  const requestTimeout = settings.HTTP_REQUEST_TIMEOUT_MS;
  return {
    genReqId: requestIdOf,
    requestTimeout,
    keepAliveTimeout: settings.HTTP_KEEPALIVE_TIMEOUT_MS,
    // No idle-socket timeout (connectionTimeout): the two timeouts above cover a slow sender,
    // and an idle one would also cut off a request waiting on a slow publish.
    http: {
      headersTimeout,
      requestTimeout,
      // Node checks the two timeouts this often (30 s by default, so a 10 s limit was up to 40 s).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
      requireHostHeader: false,
    },
    // fastify's 100 answers a longer path segment with its own 414; this lets every segment
    // that fits in the headers reach its route, which validates it (a lead id is 1-64 characters).
    routerOptions: { maxParamLength: maxHeaderSize },
    clientErrorHandler: clientErrorHandlerOf(settings),
    frameworkErrors,
  };
}

/** A request the router could not take: a %-escape that does not decode, a path segment over the limit. */
function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const [status, code, message]: [number, ErrorCode, string] =
    error.code === "FST_ERR_BAD_URL"
      ? [400, "bad_request", "the path holds a %-escape that does not decode; send a literal % as %25"]
      : error.code === "FST_ERR_MAX_PARAM_LENGTH"
        ? [
            404,
            "not_found",
            `no route ${request.method}: a path segment is longer than ${maxHeaderSize} characters`,
          ]
        : [500, "internal_error", "internal error; it has been logged"];
  if (status === 500) request.log.error({ err: error }, "request_failed");
  reply
    .code(status)
    .headers({ ...EDGE_HEADERS, "x-request-id": request.id })
    .send(errorEnvelope(code, message, request.id));
}

interface ClientError extends Error {
  code?: string;
  /** llhttp's description of what it refused. */
  reason?: string;
}

/**
 * What Node's HTTP parser refuses never reaches fastify: it arrives here with the socket, and
 * the answer is written raw (the request id is new: the headers were not read).
 */
function clientErrorHandlerOf(settings: HttpLimits) {
  return function clientErrorHandler(this: FastifyInstance, err: ClientError, socket: Socket): void {
    if (err.code === "ECONNRESET" || socket.destroyed) return;
    const [status, code, message] = describeClientError(err, settings);
    // A request whose headers were read (its body is late) keeps the caller's id.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean; req?: IncomingMessage } })
      ._httpMessage;
    const requestId = inFlight?.req ? requestIdOf(inFlight.req) : randomUUID();
    this.log.info({ status, error_code: code, reason: err.code, request_id: requestId }, "client_error");
    // A response already under way on this socket (pipelining) must not be cut by a second one.
    if (socket.writable && !inFlight?.headersSent) {
      const body = JSON.stringify(errorEnvelope(code, message, requestId));
      const headers = {
        "content-type": "application/json; charset=utf-8",
        "content-length": String(Buffer.byteLength(body)),
        ...EDGE_HEADERS,
        "x-request-id": requestId,
        connection: "close",
      };
      const head = Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join("");
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${body}`);
    }
    socket.destroy(err);
  };
}

function describeClientError(err: ClientError, settings: HttpLimits): [number, ErrorCode, string] {
  switch (err.code) {
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return [
        408,
        "request_timeout",
        `the request did not arrive in time: headers within ${settings.HTTP_HEADERS_TIMEOUT_MS} ms, the whole request within ${settings.HTTP_REQUEST_TIMEOUT_MS} ms`,
      ];
    case "HPE_HEADER_OVERFLOW":
      return [
        431,
        "headers_too_large",
        `the request line and headers are larger than ${maxHeaderSize} bytes`,
      ];
    case "HPE_INVALID_CONSTANT":
    case "HPE_INVALID_URL":
    case "HPE_INVALID_VERSION":
      return [
        400,
        "bad_request",
        "malformed request line: expected METHOD /path HTTP/1.1; a space or control character in the path must be %-encoded (a space as %20)",
      ];
    default:
      return [400, "bad_request", `malformed HTTP request: ${err.reason ?? err.message}`];
  }
}

const CODE_OF_STATUS: Partial<Record<number, ErrorCode>> = {
  400: "bad_request",
  404: "not_found",
  408: "request_timeout",
  413: "payload_too_large",
  415: "unsupported_media_type",
  431: "headers_too_large",
};

/** The not-found and error envelope of a server without an error handler of its own (the health servers). */
export function useErrorEnvelope(app: FastifyInstance): void {
  app.setNotFoundHandler(async (request, reply) => {
    reply.code(404);
    return errorEnvelope("not_found", `no route ${request.method} ${request.url.split("?")[0]}`, request.id);
  });
  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    const status = err.statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      reply.code(status);
      return errorEnvelope(CODE_OF_STATUS[status] ?? "bad_request", err.message, request.id);
    }
    request.log.error({ err }, "request_failed");
    reply.code(500);
    return errorEnvelope("internal_error", "internal error; it has been logged", request.id);
  });
}
