import { errorEnvelope } from "@followup/service-kit";
import type { FastifyPluginAsync } from "fastify";
import type { Upstream } from "./upstream.js";

/**
 * `GET /console/lag`: the durables' lag as the scheduler and the dispatcher export it on their
 * /metrics (`jetstream_consumer_pending`, `jetstream_consumer_ack_pending`), for the overview.
 * Signed-in callers only (the key is checked with lead-intake first).
 */

export interface ConsumerLagRow {
  consumer: string;
  pending: number;
  ack_pending: number;
}

const SAMPLE = /^(jetstream_consumer_pending|jetstream_consumer_ack_pending)\{([^}]*)\}\s+(\S+)/;

/** The lag of each consumer in Prometheus text; copies of one service report the same durable (the largest kept). */
export function parseConsumerLag(texts: readonly string[]): ConsumerLagRow[] {
  const rows = new Map<string, ConsumerLagRow>();
  for (const text of texts) {
    for (const line of text.split("\n")) {
      const match = SAMPLE.exec(line);
      if (!match) continue;
      const consumer = /consumer="([^"]*)"/.exec(match[2]!)?.[1];
      const value = Number(match[3]);
      if (consumer === undefined || !Number.isFinite(value)) continue;
      const row = rows.get(consumer) ?? { consumer, pending: 0, ack_pending: 0 };
      const field = match[1] === "jetstream_consumer_pending" ? "pending" : "ack_pending";
      row[field] = Math.max(row[field], value);
      rows.set(consumer, row);
    }
  }
  return [...rows.values()].sort((a, b) => a.consumer.localeCompare(b.consumer));
}

export const lagRoutes: FastifyPluginAsync<{ upstream: Upstream; metricsUrls: readonly string[] }> = async (
  app,
  { upstream, metricsUrls },
) => {
  app.get("/console/lag", async (request, reply) => {
    const key = request.headers["x-api-key"];
    if (typeof key !== "string" || key === "") {
      return reply.code(401).send(errorEnvelope("unauthorized", "missing or invalid x-api-key", request.id));
    }
    const caller = await upstream.get("/v1/caller", key, request.id);
    if (caller.status !== 200) return reply.code(caller.status).send(caller.body);
    let unreachable = 0;
    const texts = await Promise.all(
      metricsUrls.map(async (url) => {
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
          if (res.ok) return await res.text();
        } catch {
          // counted below
        }
        unreachable += 1;
        return "";
      }),
    );
    return {
      ok: true,
      data: { consumers: parseConsumerLag(texts), sources: metricsUrls.length, unreachable },
    };
  });
};
