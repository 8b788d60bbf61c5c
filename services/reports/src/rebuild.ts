import { bucketStream, type Topology, wildcards } from "@followup/contracts";
import { readStream } from "@followup/service-kit";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { projectionEvent } from "./events.js";
import {
  addToDoc,
  applyEvent,
  type CounterDoc,
  type Counters,
  canonicalJson,
  contribution,
  emptyRecord,
  type LeadRecord,
  leadRecordKey,
} from "./projection.js";

/**
 * The projection recomputed from what the streams hold: every lead event, result and plan read
 * with batched direct gets (no consumer), folded with the same applyEvent and contribution as
 * the live consumers. Equal to the bucket's content when nothing was lost or counted twice.
 */
export async function projectionFromStreams(
  jsm: JetStreamManager,
  topo: Topology,
  windowMs: number,
): Promise<Map<string, unknown>> {
  const records = new Map<string, LeadRecord>();
  const sources: [string, string][] = [
    [topo.streams.leads.name, wildcards.leads],
    [topo.streams.results.name, wildcards.followupResult],
    [bucketStream(topo.buckets.plans.bucket), `$KV.${topo.buckets.plans.bucket}.>`],
  ];
  for (const [stream, subject] of sources) {
    for await (const message of readStream(jsm, stream, subject)) {
      let event: ReturnType<typeof projectionEvent>;
      try {
        event = projectionEvent(message.subject, message.data, message.header?.get("KV-Operation"));
      } catch {
        continue; // The live consumer terminates what breaks its contract: it counts for nothing.
      }
      if (event === null) continue;
      const key = leadRecordKey(event.tenant, event.lead_id);
      records.set(key, applyEvent(records.get(key) ?? emptyRecord(event.tenant, event.lead_id), event));
    }
  }
  const counters: Counters = new Map();
  for (const record of records.values()) contribution(record, windowMs, counters);
  const projection = new Map<string, unknown>(records);
  for (const [key, fields] of counters) projection.set(key, addToDoc({}, fields));
  return projection;
}

export interface ProjectionDifference {
  key: string;
  stored: unknown;
  rebuilt: unknown;
}

/** Keys whose stored value differs from the rebuilt one (an empty counters document is no document). */
export function compareProjections(
  stored: ReadonlyMap<string, unknown>,
  rebuilt: ReadonlyMap<string, unknown>,
): ProjectionDifference[] {
  const meaningful = (v: unknown) =>
    v !== undefined && !(typeof v === "object" && v !== null && Object.keys(v).length === 0) ? v : undefined;
  const differences: ProjectionDifference[] = [];
  for (const key of new Set([...stored.keys(), ...rebuilt.keys()])) {
    const a = meaningful(stored.get(key));
    const b = meaningful(rebuilt.get(key));
    if (canonicalJson(a) !== canonicalJson(b)) differences.push({ key, stored: a, rebuilt: b });
  }
  return differences.sort((x, y) => (x.key < y.key ? -1 : 1));
}

/** Replaces the bucket's content with `rebuilt`: puts what differs, deletes what is no longer there. */
export async function writeProjection(
  kv: KV,
  stored: ReadonlyMap<string, unknown>,
  rebuilt: ReadonlyMap<string, unknown>,
): Promise<number> {
  const differences = compareProjections(stored, rebuilt);
  for (const { key, rebuilt: value } of differences) {
    if (value === undefined) await kv.delete(key);
    else await kv.put(key, JSON.stringify(value as CounterDoc));
  }
  return differences.length;
}
