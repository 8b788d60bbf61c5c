import {
  describeIssues,
  type ErrorCode,
  type ErrorDetail,
  MAX_REPORT_DAYS,
  ReportRange,
  ReportSequenceParams,
} from "@followup/contracts";
import { type ApiKeys, type Caller, errorEnvelope } from "@followup/service-kit";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { daysBetween, sequenceReport, stepsReport } from "./report.js";
import type { ProjectionStore } from "./store.js";

/**
 * `GET /v1/reports/sequences/:name` and `GET /v1/reports/steps`: read from the projection's
 * counters documents (one direct get per report), never from the streams. Authenticated with
 * the same API keys as lead-intake (service-kit's ApiKeys); a key sees its tenant's reports only.
 */

export interface ReportRoutesDeps {
  apiKeys: ApiKeys;
  /** Undefined until NATS is connected and the topology checked: the routes answer 503. */
  store: () => ProjectionStore | undefined;
  windowMs: number;
  now: () => Date;
}

const DEFAULT_DAYS = 30;

function fail(
  reply: FastifyReply,
  request: FastifyRequest,
  status: number,
  code: ErrorCode,
  message: string,
  details?: ErrorDetail[],
) {
  reply.code(status);
  return errorEnvelope(code, message, request.id, details);
}

type Range = { since: string; until: string };

/** The query's range, or the error details naming the fields. */
function rangeOf(query: unknown, now: Date): { range: Range; sequence?: string } | ErrorDetail[] {
  const parsed = ReportRange.safeParse(query ?? {});
  if (!parsed.success) return describeIssues(parsed.error);
  const until = parsed.data.until ?? now.toISOString().slice(0, 10);
  const since =
    parsed.data.since ??
    new Date(Date.parse(`${until}T00:00:00Z`) - (DEFAULT_DAYS - 1) * 86_400_000).toISOString().slice(0, 10);
  if (since > until) return [{ path: "since", message: `must not be after until (${until})` }];
  if (daysBetween(since, until).length > MAX_REPORT_DAYS) {
    return [{ path: "since", message: `must be at most ${MAX_REPORT_DAYS} days before until` }];
  }
  return { range: { since, until }, ...(parsed.data.sequence ? { sequence: parsed.data.sequence } : {}) };
}

declare module "fastify" {
  interface FastifyRequest {
    reportsCaller: Caller | null;
  }
}

export const reportRoutes: FastifyPluginAsync<ReportRoutesDeps> = async (app, deps) => {
  app.decorateRequest("reportsCaller", null);
  app.addHook("onRequest", async (request, reply) => {
    request.reportsCaller = deps.apiKeys.lookup(request.headers["x-api-key"]);
    if (request.reportsCaller === null) {
      return reply.code(401).send(errorEnvelope("unauthorized", "missing or invalid x-api-key", request.id));
    }
  });

  app.get("/v1/reports/sequences/:name", async (request, reply) => {
    const tenant = request.reportsCaller!.tenant;
    const params = ReportSequenceParams.safeParse(request.params);
    if (!params.success) return fail(reply, request, 404, "not_found", "sequence not found");
    const query = rangeOf(request.query, deps.now());
    if (Array.isArray(query)) return fail(reply, request, 400, "validation_error", "invalid query", query);
    if ("sequence" in query) {
      return fail(reply, request, 400, "validation_error", "invalid query", [
        { path: "sequence", message: "is the path's name here; use it on /v1/reports/steps" },
      ]);
    }
    const store = deps.store();
    if (store === undefined)
      return fail(reply, request, 503, "service_unavailable", "the broker is not ready");
    const docs = await store.documents(`seq.${tenant}.${params.data.name}`);
    return { ok: true, data: sequenceReport(params.data.name, query.range, docs, deps.windowMs, deps.now()) };
  });

  app.get("/v1/reports/steps", async (request, reply) => {
    const tenant = request.reportsCaller!.tenant;
    const query = rangeOf(request.query, deps.now());
    if (Array.isArray(query)) return fail(reply, request, 400, "validation_error", "invalid query", query);
    const store = deps.store();
    if (store === undefined)
      return fail(reply, request, 503, "service_unavailable", "the broker is not ready");
    const docs = await store.documents(`steps.${tenant}`);
    return { ok: true, data: stepsReport(query.range, docs, query.sequence) };
  });
};
