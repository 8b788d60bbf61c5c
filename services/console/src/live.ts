import { type FollowupKind, isValidToken, parseSubject, subjects } from "@followup/contracts";
import { errorEnvelope } from "@followup/service-kit";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { FastifyPluginAsync } from "fastify";
import type { ConsoleMetrics } from "./metrics.js";
import type { Upstream } from "./upstream.js";

/**
 * `GET /console/live/lead/:id`: server-sent events for one lead, fed from its NATS subjects.
 * The caller first proves, with its own key, that lead-intake shows it that lead
 * (`GET /v1/caller` for its tenant, `GET /v1/lead/:id`); only then does the console subscribe, to
 * that tenant's lead's subjects alone. An event says what happened (`scored`, `timer`, `result`,
 * ...), never the lead's data: the page reads the lead again through the API, so what it shows
 * is what the API shows the caller.
 */

export interface LiveDeps {
  upstream: Upstream;
  metrics: ConsoleMetrics;
  /** The console's connection as its own identity; undefined until it is up. */
  nats: () => NatsConnection | undefined;
  maxStreams: number;
}

/**
 * The follow-up subjects the console may tail (its identity's permissions): one subscription
 * each, since `followup.*` would take in `followup.due`, which it may not read.
 */
const TAILED: readonly FollowupKind[] = ["timer", "fired", "result", "replayed", "dead"];

/** Between two comments on an idle stream, so proxies and the browser keep it open. */
const HEARTBEAT_MS = 15_000;

/** `streams` holds a close function per open stream: the server ends them all at shutdown. */
export function liveRoutes(streams: Set<() => void>): FastifyPluginAsync<LiveDeps> {
  return async (app, deps) => {
    app.get<{ Params: { id: string } }>("/console/live/lead/:id", async (request, reply) => {
      const key = request.headers["x-api-key"];
      if (typeof key !== "string" || key === "") {
        return reply
          .code(401)
          .send(errorEnvelope("unauthorized", "missing or invalid x-api-key", request.id));
      }
      const caller = await deps.upstream.get("/v1/caller", key, request.id);
      if (caller.status !== 200) return reply.code(caller.status).send(caller.body);
      const tenant = (caller.body as { data?: { tenant?: unknown } }).data?.tenant;
      const leadId = request.params.id;
      if (!isValidToken(leadId))
        return reply.code(404).send(errorEnvelope("not_found", "lead not found", request.id));
      const lead = await deps.upstream.get(`/v1/lead/${leadId}`, key, request.id);
      if (lead.status !== 200) return reply.code(lead.status).send(lead.body);
      const nc = deps.nats();
      if (typeof tenant !== "string" || !isValidToken(tenant) || nc === undefined || nc.isClosed()) {
        return reply
          .code(503)
          .send(errorEnvelope("service_unavailable", "the console is not connected to NATS", request.id));
      }
      if (streams.size >= deps.maxStreams) {
        return reply
          .code(503)
          .header("retry-after", "10")
          .send(
            errorEnvelope(
              "service_unavailable",
              `${deps.maxStreams} live streams are open already`,
              request.id,
            ),
          );
      }

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      });
      const write = (text: string) => {
        if (!res.writableEnded) res.write(text);
      };
      const subscriptions: Subscription[] = [
        subjects.leadEvents(tenant, leadId),
        ...TAILED.map((kind) => subjects.followupsOfLead(kind, tenant, leadId)),
      ].map((subject) =>
        nc.subscribe(subject, {
          callback: (err, message) => {
            if (err) return close();
            let data: { kind: string; step?: number };
            try {
              const parsed = parseSubject(message.subject);
              data = { kind: parsed.kind, ...("step" in parsed ? { step: parsed.step } : {}) };
            } catch {
              return;
            }
            write(`event: lead\ndata: ${JSON.stringify(data)}\n\n`);
          },
        }),
      );
      const heartbeat = setInterval(() => write(": heartbeat\n\n"), HEARTBEAT_MS);
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        clearInterval(heartbeat);
        for (const subscription of subscriptions) subscription.unsubscribe();
        streams.delete(close);
        deps.metrics.liveStreams.set(streams.size);
        if (!res.writableEnded) res.end();
      };
      streams.add(close);
      deps.metrics.liveStreams.set(streams.size);
      res.on("close", close);
      // Subscribed: the page reads the lead again now, so nothing between its first read and here is missed.
      await nc.flush().catch(() => undefined);
      write("event: ready\ndata: {}\n\n");
    });
  };
}
