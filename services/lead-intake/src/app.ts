import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import { createHttpServer, healthRoutes } from "@followup/service-kit";
import {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyRequest,
  LogController,
} from "fastify";
import { serializerCompiler } from "fastify-type-provider-zod";
import { apiDocsRoutes, openApiOptions } from "./api-docs/index.js";
import type { Caller } from "./auth.js";
import { callerRoom } from "./caller/index.js";
import { channelsRoom } from "./channels/index.js";
import { deadLettersRoom } from "./dead-letters/index.js";
import type { AppDeps } from "./deps.js";
import { errorEnvelope, HttpError, mapError } from "./errors.js";
import { hookRoom } from "./hook/index.js";
import { validatorCompiler } from "./http/validation.js";
import { leadsRoom } from "./leads/index.js";
import { modelsRoom } from "./models/index.js";
import { queueRoom } from "./queue/index.js";
import { sequencesRoom } from "./sequences/index.js";
import { summaryRoom } from "./summary/index.js";
import { publicSuppressionRoutes, suppressionsRoom } from "./suppressions/index.js";
import { templatesRoom } from "./templates/index.js";
import { upcomingRoom } from "./upcoming/index.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Who the x-api-key authenticates; null without a valid key. */
    caller: Caller | null;
    /** The body exactly as received, kept for routes whose config asks for it (signatures). */
    rawBody: string | undefined;
    /** The error code of a failed request, for metrics. */
    errorCode: string | undefined;
  }
  interface FastifyContextConfig {
    /**
     * `api_key` (what every /v1 and /ops route gets unless it says otherwise): a valid x-api-key;
     * `hook`: the route authenticates the caller itself (signature or API key). The OpenAPI
     * document's security of each route is read from it too.
     */
    auth?: "api_key" | "hook";
    /** Keep the raw body in `request.rawBody`. */
    rawBody?: boolean;
    /** What the route's path parameters name: one that fails its schema is `<resource> not found`. */
    resource?: string;
    /**
     * What a path parameter that fails its schema is: `not_found` (the default: an id the caller
     * was given, which could name nothing) or `validation_error` (a name the caller chooses, told
     * the rule it broke).
     */
    invalidParams?: "not_found" | "validation_error";
  }
}

/** The route pattern for metrics: never the raw URL, so ids do not explode the label set. */
function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? "unmatched";
}

/** /v1 and /ops: API-key authentication, per-key rate limits, then the rooms. */
const apiRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.addHook("onRoute", (route) => {
    route.config = { ...route.config, auth: route.config?.auth ?? "api_key" };
  });
  app.addHook("onRequest", async (request) => {
    request.caller = deps.apiKeys.lookup(request.headers["x-api-key"]);
  });
  await app.register(rateLimit, {
    max: deps.config.RATE_LIMIT_PER_MINUTE,
    timeWindow: 60_000,
    // Per key; callers without a valid key share a budget per address, so guessing keys is slow too.
    keyGenerator: (request) => (request.caller ? `key:${request.caller.keyId}` : `ip:${request.ip}`),
    errorResponseBuilder: (_request, context) =>
      new HttpError(
        429,
        "rate_limited",
        `rate limit of ${context.max} requests per minute exceeded; retry in ${context.after}`,
        undefined,
        { "retry-after": String(Math.max(1, Math.ceil(context.ttl / 1000))) },
      ),
  });
  // Before the body is read: an unauthenticated caller learns nothing about its body.
  app.addHook("preParsing", async (request) => {
    if (request.routeOptions.config.auth === "hook") return;
    if (request.caller === null) throw new HttpError(401, "unauthorized", "missing or invalid x-api-key");
  });
  await app.register(leadsRoom, deps);
  await app.register(hookRoom, deps);
  await app.register(queueRoom, deps);
  await app.register(deadLettersRoom, deps);
  await app.register(sequencesRoom, deps);
  await app.register(templatesRoom, deps);
  await app.register(channelsRoom, deps);
  await app.register(suppressionsRoom, deps);
  await app.register(modelsRoom, deps);
  await app.register(callerRoom, deps);
  await app.register(upcomingRoom, deps);
  await app.register(summaryRoom, deps);
};

/**
 * The HTTP server of lead-intake, without listening: main.ts listens, tests use `inject` or
 * listen on port 0. NATS may come later; routes that need it answer 503 until it does.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  // The kit's edge: HTTP limits, request ids, nosniff, the envelope for what fails before a route.
  const app = createHttpServer(deps.config, {
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One line per request is written by the onResponse hook below, with the route and status.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "request_id" }),
    bodyLimit: deps.config.BODY_LIMIT_BYTES,
    return503OnClosing: true,
  });
  // Each route declares its schemas (zod, from @followup/contracts) beside its handler.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest("caller", null);
  app.decorateRequest("rawBody", undefined);
  app.decorateRequest("errorCode", undefined);

  app.addHook("onResponse", async (request, reply) => {
    const route = routeOf(request);
    const status = reply.statusCode;
    deps.metrics.httpDuration.observe(
      { method: request.method, route, status: String(status) },
      reply.elapsedTime / 1000,
    );
    if (request.method === "POST" && route === "/v1/lead" && status >= 400) {
      deps.metrics.rejected.inc({ reason: request.errorCode ?? `status_${status}` });
    }
    if (route === "/metrics" || route === "/healthz" || route === "/readyz") return;
    request.log.info(
      {
        method: request.method,
        route,
        status,
        duration_ms: Math.round(reply.elapsedTime * 100) / 100,
        ...(request.caller ? { tenant: request.caller.tenant } : {}),
        ...(request.errorCode ? { error_code: request.errorCode } : {}),
      },
      "request_completed",
    );
  });

  // One JSON parser for the whole API (and no text/plain one): anything else is a 415.
  app.removeAllContentTypeParsers();
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const text = body as string;
    if (request.routeOptions.config.rawBody) request.rawBody = text;
    // An empty body is no body: the route's schema says what it expected.
    if (text.length === 0) return done(null, undefined);
    parseJson(request, text, (err, value) => {
      if (err === null) return done(null, value);
      done(forbiddenKey(text) ?? err, undefined);
    });
  });

  app.setErrorHandler(async (err, request, reply) => {
    const { resource, invalidParams } = request.routeOptions.config;
    const mapped = mapError(err, {
      bodyLimitBytes: deps.config.BODY_LIMIT_BYTES,
      ...(resource !== undefined ? { resource } : {}),
      ...(invalidParams !== undefined ? { invalidParams } : {}),
    });
    request.errorCode = mapped.code;
    if (mapped.internal) request.log.error({ err, route: routeOf(request) }, "request_failed");
    else if (mapped.status >= 500) request.log.warn({ reason: mapped.message }, "request_unavailable");
    reply.code(mapped.status).headers(mapped.headers);
    return errorEnvelope(mapped, request.id);
  });
  app.setNotFoundHandler(async (request, reply) => {
    request.errorCode = "not_found";
    reply.code(404);
    return errorEnvelope(
      {
        status: 404,
        code: "not_found",
        message: `no route ${request.method} ${request.url.split("?")[0]}`,
        headers: {},
        internal: false,
      },
      request.id,
    );
  });

  // Before any route: it documents each route as it is added (api-docs/document.ts).
  await app.register(swagger, openApiOptions());
  await app.register(healthRoutes, { registry: deps.registry, readiness: deps.readiness });
  await app.register(apiRoutes, deps);
  await app.register(publicSuppressionRoutes, deps);
  await app.register(apiDocsRoutes);
  return app;
}

/**
 * secure-json-parse refuses `__proto__` and `constructor.prototype` keys with the same error as
 * broken JSON; this says which it was, so the caller is not told their valid JSON is broken.
 */
function forbiddenKey(text: string): HttpError | undefined {
  try {
    JSON.parse(text);
  } catch {
    return undefined;
  }
  return new HttpError(
    400,
    "invalid_json",
    "request body contains a forbidden key (__proto__ or constructor.prototype)",
  );
}
