import {
  type ErrorDetail,
  type FollowupPlan,
  leadKey,
  makeEvent,
  type SequenceReport,
  type StepsReport,
  subjects,
  topology,
} from "@followup/contracts";
import { type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import { ApiKeys, createLogger, provisionTopology, Readiness } from "@followup/service-kit";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { FastifyInstance } from "fastify";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildReportsApp } from "../src/app.js";
import { type ProjectionConsumers, startProjectionConsumers } from "../src/consumer.js";
import { createReportsMetrics } from "../src/metrics.js";
import { compareProjections, projectionFromStreams, writeProjection } from "../src/rebuild.js";
import { ProjectionStore, REPORTS_BUCKET } from "../src/store.js";

const DAY = 86_400_000;
const WINDOW = 14 * DAY;
const topo = topology();
const logger = createLogger({ service: "reports-test", level: "silent" });
const KEY = "reports-test-key";

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let kv: KV;
let plans: KV;
let app: FastifyInstance;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  await provisionTopology(nc, topo);
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  kv = await new Kvm(nc).open(REPORTS_BUCKET);
  plans = await new Kvm(nc).open(topo.buckets.plans.bucket);
});

afterAll(async () => {
  await app?.close();
  await nc?.close();
  await server?.stop();
});

/**
 * A store that fails the first `failures` batches after they committed: what a crash between
 * the write and the acks looks like to the consumer (the batch is redelivered, already counted).
 */
class CrashAfterCommit extends ProjectionStore {
  failures = 3;
  override async apply(events: Parameters<ProjectionStore["apply"]>[0]): Promise<number> {
    const changed = await super.apply(events);
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error("crashed after the commit, before the acks");
    }
    return changed;
  }
}

const created = new Date(Date.now() - DAY);
const iso = (ms: number) => new Date(created.getTime() + ms).toISOString();

function plan(tenant: string, leadId: string, i: number): FollowupPlan {
  const holdout = i % 5 === 0;
  return {
    lead_id: leadId,
    tenant,
    lead_created_at: created.toISOString(),
    pred_prob: 0.9,
    planned_at: created.toISOString(),
    sequence: { name: "spring", revision: 1 },
    holdout,
    steps: holdout
      ? []
      : [
          {
            step: 1,
            delay_s: 60,
            due_at: iso(60_000),
            state: "pending",
            channel: "sms",
            variant: i % 2 ? "a" : "b",
          },
        ],
  };
}

async function publishLead(tenant: string, leadId: string, i: number): Promise<void> {
  const data = {
    lead_id: leadId,
    created_at: created.toISOString(),
    pred_prob: 0.9,
    score: 0.7,
    intent: "lead_capture" as const,
    sentiment: "neutral" as const,
    urgency: "normal" as const,
    model_version: "m1",
  };
  const scored = makeEvent("lead.scored.v1", {
    source: "/lead-intake",
    subject: leadId,
    tenant,
    data,
    time: created,
  });
  await js.publish(subjects.leadScored(tenant, leadId), JSON.stringify(scored));
  await plans.put(leadKey({ tenant, leadId }), JSON.stringify(plan(tenant, leadId, i)));
  if (i % 5 !== 0) {
    const result = makeEvent("followup.result.v1", {
      source: "/dispatcher",
      subject: `${leadId}/1`,
      tenant,
      time: new Date(created.getTime() + 60_000),
      data: {
        lead_id: leadId,
        step: 1,
        delay_s: 60,
        due_at: iso(60_000),
        idempotency_key: `${tenant}:${leadId}:1`,
        channel: "sms",
        attempt: 1,
        result: i % 7 === 0 ? "dead" : "ok",
        status_code: 200,
        duration_ms: 3,
      },
    });
    // Published twice, as a dispatcher that lost its ack would (no msg id: two stored messages).
    await js.publish(subjects.followupResult(tenant, leadId, 1), JSON.stringify(result));
    await js.publish(subjects.followupResult(tenant, leadId, 1), JSON.stringify(result));
  }
  if (i % 3 !== 2) {
    const kind = i % 3 === 0 ? "booked" : "ghosted";
    const outcome = makeEvent("lead.outcome.v1", {
      source: "/lead-intake",
      subject: leadId,
      tenant,
      data: {
        lead_id: leadId,
        outcome: kind,
        recorded_at: iso(2 * 3_600_000),
        stops_followups: kind === "booked",
      },
    });
    await js.publish(subjects.leadOutcome(tenant, leadId), JSON.stringify(outcome));
    await js.publish(subjects.leadOutcome(tenant, leadId), JSON.stringify(outcome));
  }
}

async function report(
  path: string,
  key = KEY,
): Promise<{
  status: number;
  body: { ok: boolean; data: SequenceReport & StepsReport; error: { details: ErrorDetail[] } };
}> {
  const res = await app.inject({ method: "GET", url: path, headers: { "x-api-key": key } });
  return { status: res.statusCode, body: res.json() };
}

describe("the conversion projection on a real nats-server", () => {
  const N = 60;
  let consumers: ProjectionConsumers;
  let store: CrashAfterCommit;

  it("counts each lead once under redelivery and duplicates, and serves the reports", async () => {
    store = new CrashAfterCommit({ kv, js, jsm, windowMs: WINDOW, logger });
    const registry = new Registry();
    const metrics = createReportsMetrics(registry);
    const readiness = new Readiness();
    app = await buildReportsApp({
      apiKeys: new ApiKeys([
        { key: KEY, tenant: "acme" },
        { key: "other-key", tenant: "globex" },
      ]),
      store: () => store,
      windowMs: WINDOW,
      now: () => new Date(),
      limits: {},
      logger,
      registry,
      readiness,
    });
    consumers = await startProjectionConsumers({
      js,
      specs: Object.values(topo.consumers).filter((c) => c.consumedBy === "reports"),
      store,
      batchSize: 25,
      metrics,
      readiness,
      logger,
    });
    for (let i = 0; i < N; i++) await publishLead("acme", `lead-${i}`, i);
    await publishLead("globex", "lead-g", 1);

    // Expected, counted by hand from publishLead's rules.
    const ids = Array.from({ length: N }, (_, i) => i);
    const arm = (i: number) => (i % 5 === 0 ? "holdout" : i % 2 ? "a" : "b");
    const expected = (name: string) => {
      const members = ids.filter((i) => arm(i) === name);
      return {
        enrolled: members.length,
        converted: members.filter((i) => i % 3 === 0).length,
        booked: members.filter((i) => i % 3 === 0).length,
        ghosted: members.filter((i) => i % 3 === 1).length,
        open: members.filter((i) => i % 3 === 2).length,
        delivered: name === "holdout" ? 0 : members.filter((i) => i % 7 !== 0).length,
      };
    };
    const sinceUntil = `since=${created.toISOString().slice(0, 10)}&until=${created.toISOString().slice(0, 10)}`;
    const url = `/v1/reports/sequences/spring?${sinceUntil}`;
    await waitFor(
      async () => {
        const r = await report(url);
        const a = r.body.data?.variants?.find((v) => v.variant === "a");
        return (
          a?.enrolled === expected("a").enrolled &&
          a?.outcomes?.booked === expected("a").booked &&
          store.failures === 0
        );
      },
      { description: "the projection to count every lead", timeoutMs: 30_000 },
    );
    // Let the redeliveries of the failed batches and the duplicates settle: nothing pending.
    await waitFor(
      async () => {
        const infos = await Promise.all(
          Object.values(topo.consumers)
            .filter((c) => c.consumedBy === "reports")
            .map((c) => jsm.consumers.info(c.stream, c.durable)),
        );
        return infos.every((i) => i.num_pending === 0 && i.num_ack_pending === 0);
      },
      { description: "every reports durable to be drained", timeoutMs: 30_000 },
    );
    const body = (await report(url)).body.data;
    for (const name of ["a", "b"]) {
      const row = body.variants.find((v) => v.variant === name);
      const e = expected(name);
      expect(row).toMatchObject({
        enrolled: e.enrolled,
        converted: e.converted,
        followups_delivered: e.delivered,
        outcomes: { booked: e.booked, ghosted: e.ghosted },
        inside_attribution_window: e.open,
      });
      expect(row?.conversion_ci95.low).toBeLessThan(row?.conversion_rate ?? 0);
      expect(row?.vs_holdout?.p_value).toBeGreaterThan(0);
    }
    expect(body.holdout).toMatchObject({
      enrolled: expected("holdout").enrolled,
      converted: expected("holdout").converted,
    });

    const steps = (await report(`/v1/reports/steps?${sinceUntil}`)).body.data.steps;
    const stepA = steps.find((s) => s.variant === "a");
    const aIds = ids.filter((i) => arm(i) === "a");
    expect(stepA).toMatchObject({
      sequence: "spring",
      step: 1,
      channel: "sms",
      delivered: aIds.filter((i) => i % 7 !== 0).length,
      failed: aIds.filter((i) => i % 7 === 0).length,
      converted_after: aIds.filter((i) => i % 7 !== 0 && i % 3 === 0).length,
    });

    // Tenant-scoped: globex sees its one lead, not acme's.
    const globex = (await report(url, "other-key")).body.data;
    expect(globex.variants.reduce((sum, v) => sum + v.enrolled, 0)).toBe(1);
    expect((await report(url, "wrong")).status).toBe(401);
    const bad = await report("/v1/reports/sequences/spring?since=yesterday");
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d) => d.path)).toEqual(["since"]);
  });

  it("equals its rebuild from the streams, and a rebuilt bucket serves the same numbers", async () => {
    const url = `/v1/reports/sequences/spring?since=${created.toISOString().slice(0, 10)}`;
    const before = (await report(url)).body.data;
    const stepsBefore = (await report("/v1/reports/steps")).body.data;
    await consumers.stop();
    const rebuilt = await projectionFromStreams(jsm, topo, WINDOW);
    expect(compareProjections(await store.snapshot(), rebuilt)).toEqual([]);
    // Empty the bucket, then rebuild it: the same report.
    for (const key of (await store.snapshot()).keys()) await kv.delete(key);
    expect((await report(url)).body.data.variants).toEqual([]);
    await writeProjection(kv, await store.snapshot(), rebuilt);
    expect((await report(url)).body.data).toEqual(before);
    expect((await report("/v1/reports/steps")).body.data).toEqual(stepsBefore);
  });
});
