import { type FollowupDead, subjects, type Topology, topology } from "@followup/contracts";
import { freePort, type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import { provisionTopology } from "@followup/service-kit";
import {
  type HookAnswer,
  type HookCall,
  type HookRecorder,
  startHookRecorder,
} from "@followup/system-tests/support";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// Replaying is lead-intake's (its /ops/dead-letters routes); this test replays as an operator would.
import { replayDeadLetters } from "../../lead-intake/src/dead-letters/index.js";
import {
  type InProcessDispatcher,
  metricValue,
  publishDue,
  putLead,
  readStream,
  resultsOf,
  SECRET,
  startInProcess,
} from "./fixtures.js";

const TENANT = "acme";
const BASE_MS = 200;
const MAX_ATTEMPTS = 3;

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let kv: KV;
let topo: Topology;
let receiver: HookRecorder;
let refusedPort: number;
let dispatcher: InProcessDispatcher;

/** What the tests measured, printed once at the end for the record. */
const measured: string[] = [];

/** Scripted replies per lead: the n-th call for a lead gets the n-th reply, then 200. */
const scripts = new Map<string, HookAnswer[]>();
const callCounts = new Map<string, number>();

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  topo = topology();
  await provisionTopology(nc, topo);
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  kv = await new Kvm(nc).open(topo.buckets.leads.bucket);
  receiver = await startHookRecorder({
    secret: SECRET,
    responder: (call) => {
      const lead = String(call.body?.lead_id);
      const n = callCounts.get(lead) ?? 0;
      callCounts.set(lead, n + 1);
      return scripts.get(lead)?.[n] ?? { status: 200 };
    },
  });
  refusedPort = await freePort();
  dispatcher = await startInProcess({
    nc,
    topology: topo,
    hooks: {
      hook: { url: receiver.url },
      "hook-quick": { url: receiver.url, timeoutMs: 500 },
      "hook-late": { url: `http://127.0.0.1:${refusedPort}/ops/followup-hook`, timeoutMs: 1_000 },
    },
    maxAttempts: MAX_ATTEMPTS,
    baseMs: BASE_MS,
    maxMs: 1_000,
  });
});

afterAll(async () => {
  if (measured.length > 0) console.info(`measured:\n  ${measured.join("\n  ")}`);
  await dispatcher?.stop();
  await receiver?.close();
  await nc?.close();
  await server?.cleanup();
});

const keyOf = (leadId: string, step = 1) => `${TENANT}:${leadId}:${step}`;

const results = (leadId: string) => resultsOf(nc, TENANT, leadId);

async function deadLetters(leadId: string) {
  return readStream<FollowupDead>(
    nc,
    topo.streams.dead.name,
    subjects.followupsOfLead("dead", TENANT, leadId),
  );
}

async function queueDepth(): Promise<number> {
  return (await jsm.streams.info(topo.streams.followups.name)).state.messages;
}

function accepted(leadId: string, step = 1): Promise<HookCall> {
  return waitFor(() => receiver.delivered.get(keyOf(leadId, step)), {
    description: `the hook to accept ${keyOf(leadId, step)}`,
    timeoutMs: 15_000,
  });
}

const gaps = (calls: HookCall[]) => calls.slice(1).map((call, i) => call.receivedAt - calls[i]!.receivedAt);

describe("dispatcher (in-process, real nats-server and HTTP hook)", () => {
  it("delivers a due follow-up with the payload, a verifying signature and its idempotency key, then acks", async () => {
    await putLead(kv, TENANT, "L-ok");
    const { event, key } = await publishDue(js, { tenant: TENANT, leadId: "L-ok", delayS: 30 });
    const call = await accepted("L-ok");

    expect(call.verified).toBe(true);
    expect(call.headers["webhook-id"]).toBe(key);
    expect(key).toBe("acme:L-ok:1");
    expect(call.body).toMatchObject({
      lead_id: "L-ok",
      strategy: "30s",
      message: "Auto follow-up at +30s",
      tenant: TENANT,
      step: 1,
      due_at: event.data.due_at,
      attempt: 1,
    });

    const [result] = await waitFor(
      async () => {
        const r = await results("L-ok");
        return r.length === 1 && r;
      },
      { description: "one result event" },
    );
    expect(result).toMatchObject({
      result: "ok",
      attempt: 1,
      status_code: 200,
      idempotency_key: key,
      channel: "hook",
    });
    expect(result!.lateness_ms).toBeGreaterThanOrEqual(0);
    expect(result!.lateness_ms).toBeLessThan(1_500);
    expect(result!.duration_ms).toBeGreaterThanOrEqual(0);
    measured.push(`first delivery: lateness ${result!.lateness_ms} ms, hook call ${result!.duration_ms} ms`);
    await waitFor(async () => (await queueDepth()) === 0, {
      description: "the work queue to be empty (acked)",
    });

    expect(
      await metricValue(dispatcher.registry, "followup_jobs_total", { strategy: "30s", result: "ok" }),
    ).toBe(1);
    const executed = dispatcher.logs
      .entries()
      .find((e) => e.msg === "followup_executed" && e.lead_id === "L-ok");
    expect(executed).toMatchObject({
      level: "info",
      strategy: "30s",
      status_code: 200,
      attempt: 1,
      result: "ok",
    });
    const logText = dispatcher.logs.lines.join("\n");
    expect(logText).not.toContain(SECRET);
    expect(logText).not.toContain(String(call.headers["webhook-signature"]).slice(3));
  });

  it("never delivers before due_at: holds what is due in a moment, hands back what is due later", async () => {
    await putLead(kv, TENANT, "L-soon");
    await putLead(kv, TENANT, "L-later");
    const releasedBefore = await metricValue(dispatcher.registry, "dispatcher_released_total", {
      reason: "not_due",
    });
    const soon = new Date(Date.now() + 400);
    const later = new Date(Date.now() + 2_500);
    await publishDue(js, { tenant: TENANT, leadId: "L-soon", delayS: 31, dueAt: soon });
    await publishDue(js, { tenant: TENANT, leadId: "L-later", delayS: 31, dueAt: later });
    const [soonCall, laterCall] = await Promise.all([accepted("L-soon"), accepted("L-later")]);
    expect(soonCall.receivedAt).toBeGreaterThanOrEqual(soon.getTime());
    expect(laterCall.receivedAt).toBeGreaterThanOrEqual(later.getTime());
    expect(soonCall.receivedAt - soon.getTime()).toBeLessThan(1_500);
    expect(laterCall.receivedAt - later.getTime()).toBeLessThan(1_500);
    measured.push(
      `never early: held +400 ms arrived ${soonCall.receivedAt - soon.getTime()} ms after due_at, handed-back +2.5 s arrived ${laterCall.receivedAt - later.getTime()} ms after`,
    );
    expect(
      await metricValue(dispatcher.registry, "dispatcher_released_total", { reason: "not_due" }),
    ).toBeGreaterThan(releasedBefore);
  });

  it("500 then 200: delivered on the retry with the same key, after a back-off within its bounds", async () => {
    await putLead(kv, TENANT, "L-500");
    scripts.set("L-500", [{ status: 500, body: "try later" }]);
    const retriesBefore = await metricValue(dispatcher.registry, "followup_retries_total", {
      reason: "status_5xx",
    });
    const { key } = await publishDue(js, { tenant: TENANT, leadId: "L-500", delayS: 32 });
    await accepted("L-500");

    const calls = receiver.callsFor(key);
    expect(calls.map((c) => c.status)).toEqual([500, 200]);
    expect(calls.map((c) => c.body?.attempt)).toEqual([1, 2]);
    expect(calls.every((c) => c.verified && c.headers["webhook-id"] === key)).toBe(true);

    const r = await waitFor(
      async () => {
        const all = await results("L-500");
        return all.length === 2 && all;
      },
      { description: "two result events" },
    );
    expect(r.map((x) => x.result)).toEqual(["error", "ok"]);
    expect(r[0]).toMatchObject({ status_code: 500, error: "HTTP 500: try later", attempt: 1 });
    const planned = r[0]!.retry_in_ms!;
    expect(planned).toBeGreaterThanOrEqual(0);
    expect(planned).toBeLessThanOrEqual(BASE_MS);
    const [gap] = gaps(calls);
    expect(gap).toBeGreaterThanOrEqual(planned - 2);
    expect(gap).toBeLessThanOrEqual(BASE_MS + 1_500);
    measured.push(`500 then 200: planned back-off ${planned} ms (cap ${BASE_MS}), observed gap ${gap} ms`);
    expect(await metricValue(dispatcher.registry, "followup_retries_total", { reason: "status_5xx" })).toBe(
      retriesBefore + 1,
    );
    expect(
      await metricValue(dispatcher.registry, "followup_jobs_total", { strategy: "32s", result: "error" }),
    ).toBe(1);
    const warn = dispatcher.logs
      .entries()
      .find((e) => e.msg === "followup_executed" && e.lead_id === "L-500");
    expect(warn).toMatchObject({ level: "warn", result: "error", status_code: 500, strategy: "32s" });
  });

  it("429 with Retry-After: 2 is not retried sooner", async () => {
    await putLead(kv, TENANT, "L-429");
    scripts.set("L-429", [{ status: 429, headers: { "retry-after": "2" } }]);
    const { key } = await publishDue(js, { tenant: TENANT, leadId: "L-429", delayS: 33 });
    await accepted("L-429");
    const calls = receiver.callsFor(key);
    expect(calls.map((c) => c.status)).toEqual([429, 200]);
    const [gap] = gaps(calls);
    expect(gap).toBeGreaterThanOrEqual(2_000);
    expect(gap).toBeLessThan(2_000 + 1_500);
    measured.push(`429 Retry-After: 2: observed gap ${gap} ms`);
    const r = await results("L-429");
    expect(r[0]).toMatchObject({ result: "error", status_code: 429 });
    expect(r[0]!.retry_in_ms).toBeGreaterThanOrEqual(2_000);
  });

  it("a timeout is retried, then delivered", async () => {
    await putLead(kv, TENANT, "L-timeout");
    scripts.set("L-timeout", [{ status: 0, hang: true }]);
    const before = await metricValue(dispatcher.registry, "followup_retries_total", { reason: "timeout" });
    const { key } = await publishDue(js, {
      tenant: TENANT,
      leadId: "L-timeout",
      delayS: 34,
      channel: "hook-quick",
    });
    await accepted("L-timeout");
    expect(receiver.callsFor(key)).toHaveLength(2);
    const r = await waitFor(
      async () => {
        const all = await results("L-timeout");
        return all.length === 2 && all;
      },
      { description: "two result events" },
    );
    expect(r[0]).toMatchObject({
      result: "error",
      status_code: null,
      error: "timeout: no response within 500 ms",
    });
    expect(r[0]!.duration_ms).toBeGreaterThanOrEqual(490);
    expect(r[1]).toMatchObject({ result: "ok", attempt: 2, channel: "hook-quick" });
    expect(await metricValue(dispatcher.registry, "followup_retries_total", { reason: "timeout" })).toBe(
      before + 1,
    );
  });

  it("connection refused is retried until exhausted, dead-lettered, and delivered on replay once the hook is up", async () => {
    await putLead(kv, TENANT, "L-refused");
    const { event, key } = await publishDue(js, {
      tenant: TENANT,
      leadId: "L-refused",
      delayS: 35,
      channel: "hook-late",
    });
    const [letter] = await waitFor(
      async () => {
        const d = await deadLetters("L-refused");
        return d.length === 1 && d;
      },
      { description: "the dead letter of L-refused" },
    );
    const r = await results("L-refused");
    expect(r.map((x) => x.result)).toEqual(["error", "error", "dead"]);
    expect(r.every((x) => x.status_code === null && /ECONNREFUSED/.test(x.error ?? ""))).toBe(true);
    expect(letter!.event.data).toMatchObject({ reason: "exhausted", attempts: 3, last_status_code: null });
    expect(letter!.event.data.last_error).toMatch(/ECONNREFUSED/);

    const late = await startHookRecorder({ secret: SECRET, port: refusedPort, path: "/ops/followup-hook" });
    try {
      const { replayed } = await replayDeadLetters(nc, topo, { tenant: TENANT, leadId: "L-refused" });
      expect(replayed).toHaveLength(1);
      const call = await waitFor(() => late.delivered.get(key), {
        description: "the replay to reach the hook",
      });
      expect(call.verified).toBe(true);
      expect(call.body).toMatchObject({ due_at: event.data.due_at, attempt: MAX_ATTEMPTS + 1 });
      expect(await deadLetters("L-refused")).toHaveLength(0);
    } finally {
      await late.close();
    }
  });

  it("400: dead at once, with the receiver's answer in the dead letter", async () => {
    await putLead(kv, TENANT, "L-400");
    scripts.set("L-400", [{ status: 400, body: '{"error":"unknown lead"}' }]);
    const before = await metricValue(dispatcher.registry, "followup_dead_letters_total", {
      reason: "permanent",
    });
    const { key } = await publishDue(js, { tenant: TENANT, leadId: "L-400", delayS: 36 });
    const [letter] = await waitFor(
      async () => {
        const d = await deadLetters("L-400");
        return d.length === 1 && d;
      },
      { description: "the dead letter of L-400" },
    );
    expect(receiver.callsFor(key)).toHaveLength(1);
    expect(letter!.subject).toBe("followup.dead.acme.L-400.1");
    expect(letter!.event.data).toMatchObject({
      reason: "permanent",
      attempts: 1,
      last_status_code: 400,
      last_error: 'HTTP 400: {"error":"unknown lead"}',
      idempotency_key: key,
    });
    expect((await results("L-400")).map((x) => x.result)).toEqual(["dead"]);
    expect(
      await metricValue(dispatcher.registry, "followup_dead_letters_total", { reason: "permanent" }),
    ).toBe(before + 1);
    expect(
      await metricValue(dispatcher.registry, "followup_jobs_total", { strategy: "36s", result: "dead" }),
    ).toBe(1);
    const logged = dispatcher.logs
      .entries()
      .filter((e) => e.msg === "followup_executed" && e.lead_id === "L-400");
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      level: "error",
      result: "dead",
      status_code: 400,
      reason: "permanent",
    });
    await waitFor(async () => (await queueDepth()) === 0, { description: "the work queue to be empty" });
  });

  it("always 500: dead after the configured attempts; the dead letter holds the due follow-up; a replay delivers it", async () => {
    await putLead(kv, TENANT, "L-dead");
    scripts.set("L-dead", [{ status: 500 }, { status: 502 }, { status: 503, body: "still down" }]);
    const { event, key } = await publishDue(js, { tenant: TENANT, leadId: "L-dead", step: 2, delayS: 37 });
    const [letter] = await waitFor(
      async () => {
        const d = await deadLetters("L-dead");
        return d.length === 1 && d;
      },
      { description: "the dead letter of L-dead" },
    );

    const calls = receiver.callsFor(key);
    expect(calls.map((c) => c.body?.attempt)).toEqual([1, 2, 3]);
    const r = await results("L-dead");
    expect(r.map((x) => x.result)).toEqual(["error", "error", "dead"]);
    measured.push(
      `always 500: planned ${r.slice(0, 2).map((x) => x.retry_in_ms)} ms (caps 200, 400), observed gaps ${gaps(calls)} ms`,
    );
    gaps(calls).forEach((gap, i) => {
      const planned = r[i]!.retry_in_ms!;
      expect(planned).toBeLessThanOrEqual(BASE_MS * 2 ** i);
      expect(gap).toBeGreaterThanOrEqual(planned - 2);
      expect(gap).toBeLessThanOrEqual(BASE_MS * 2 ** i + 1_500);
    });
    expect(letter!.subject).toBe("followup.dead.acme.L-dead.2");
    expect(letter!.event).toMatchObject({ type: "followup.dead.v1", tenant: TENANT, source: "/dispatcher" });
    expect(letter!.event.data).toMatchObject({
      lead_id: "L-dead",
      step: 2,
      reason: "exhausted",
      attempts: MAX_ATTEMPTS,
      last_status_code: 503,
      last_error: "HTTP 503: still down",
      idempotency_key: key,
      channel: "hook",
    });
    expect(letter!.event.data.due).toEqual(event.data);

    const { replayed } = await replayDeadLetters(nc, topo, { tenant: TENANT, leadId: "L-dead" });
    expect(replayed.map((x) => x.seq)).toEqual([letter!.seq]);
    const call = await accepted("L-dead", 2);
    expect(call.headers["webhook-id"]).toBe(key);
    // Numbered on from the dead letter's attempts, with a budget of its own.
    expect(call.body?.attempt).toBe(MAX_ATTEMPTS + 1);
    expect(receiver.callsFor(key)).toHaveLength(4);
    expect(await deadLetters("L-dead")).toHaveLength(0);
    const after = await waitFor(
      async () => {
        const all = await results("L-dead");
        return all.length === 4 && all;
      },
      { description: "the replay's result" },
    );
    expect(after[3]).toMatchObject({ result: "ok", attempt: MAX_ATTEMPTS + 1, idempotency_key: key });
  });

  it("a stopping outcome, a cancellation or a missing lead acks without a call; a non-stopping outcome delivers", async () => {
    const recorded_at = new Date().toISOString();
    await putLead(kv, TENANT, "L-booked", { outcome: { outcome: "booked", recorded_at } });
    await putLead(kv, TENANT, "L-cancelled", { cancelled_at: recorded_at });
    await putLead(kv, TENANT, "L-nurture", { outcome: { outcome: "nurture", recorded_at } });
    const stopped = (reason: string) =>
      metricValue(dispatcher.registry, "followups_stopped_at_delivery_total", { reason });
    const before = {
      outcome: await stopped("outcome"),
      cancelled: await stopped("cancelled"),
      missing: await stopped("lead_missing"),
    };
    for (const leadId of ["L-booked", "L-cancelled", "L-missing", "L-nurture"]) {
      await publishDue(js, { tenant: TENANT, leadId, delayS: 38 });
    }
    await accepted("L-nurture");
    await waitFor(
      async () =>
        (await stopped("outcome")) === before.outcome + 1 &&
        (await stopped("cancelled")) === before.cancelled + 1 &&
        (await stopped("lead_missing")) === before.missing + 1,
      { description: "three stopped follow-ups" },
    );
    for (const leadId of ["L-booked", "L-cancelled", "L-missing"]) {
      expect(receiver.callsFor(keyOf(leadId))).toHaveLength(0);
      expect(await results(leadId)).toHaveLength(0);
    }
    await waitFor(async () => (await queueDepth()) === 0, { description: "the work queue to be empty" });
  });

  it("terminates and counts a due event that breaks its contract; the ones behind it are delivered", async () => {
    await putLead(kv, TENANT, "L-after-bad");
    const before = await metricValue(dispatcher.registry, "dispatcher_invalid_events_total");
    await js.publish("followup.due.acme.L-bad.1", "not json");
    const { event } = await publishDue(js, { tenant: TENANT, leadId: "L-mismatch", delayS: 39 });
    // A valid event on another lead's subject: the subject and the event disagree.
    await js.publish("followup.due.acme.L-other.1", JSON.stringify(event));
    await publishDue(js, { tenant: TENANT, leadId: "L-after-bad", delayS: 39 });
    await putLead(kv, TENANT, "L-mismatch");
    await accepted("L-after-bad");
    await waitFor(
      async () => (await metricValue(dispatcher.registry, "dispatcher_invalid_events_total")) >= before + 2,
      {
        description: "two invalid events counted",
      },
    );
    expect(receiver.callsFor(keyOf("L-other"))).toHaveLength(0);
    const logged = dispatcher.logs.entries().filter((e) => e.msg === "invalid_due_event_terminated");
    expect(logged.some((e) => e.subject === "followup.due.acme.L-bad.1" && e.level === "error")).toBe(true);
    expect(logged.some((e) => e.subject === "followup.due.acme.L-other.1")).toBe(true);
    await waitFor(async () => (await queueDepth()) === 0, { description: "the work queue to be empty" });
  });

  it("an unknown channel is a permanent failure: dead letter, no call", async () => {
    await putLead(kv, TENANT, "L-sms");
    const { key } = await publishDue(js, { tenant: TENANT, leadId: "L-sms", delayS: 40, channel: "sms" });
    const [letter] = await waitFor(
      async () => {
        const d = await deadLetters("L-sms");
        return d.length === 1 && d;
      },
      { description: "the dead letter of L-sms" },
    );
    expect(letter!.event.data).toMatchObject({ reason: "permanent", attempts: 1, last_status_code: null });
    expect(letter!.event.data.last_error).toMatch(/unknown channel "sms"/);
    expect(receiver.callsFor(key)).toHaveLength(0);
  });

  it("stop() lets a call in flight finish and settles it, then pulls nothing more", async () => {
    await putLead(kv, TENANT, "L-inflight");
    await putLead(kv, TENANT, "L-after-stop");
    scripts.set("L-inflight", [{ status: 200, delayMs: 1_000 }]);
    await publishDue(js, { tenant: TENANT, leadId: "L-inflight", delayS: 41 });
    await waitFor(() => receiver.callsFor(keyOf("L-inflight")).length === 1, {
      description: "the slow call",
    });
    expect(await metricValue(dispatcher.registry, "followup_deliveries_in_flight")).toBe(1);
    await dispatcher.handle.stop();
    expect(dispatcher.handle.held).toBe(0);
    expect(await metricValue(dispatcher.registry, "followup_deliveries_in_flight")).toBe(0);
    expect((await results("L-inflight")).map((x) => x.result)).toEqual(["ok"]);
    const info = await jsm.consumers.info(topo.streams.followups.name, topo.consumers.dispatch.durable);
    expect(info.num_ack_pending).toBe(0);

    await publishDue(js, { tenant: TENANT, leadId: "L-after-stop", delayS: 41 });
    // Bounded negative check: a stopped dispatcher pulls nothing.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(receiver.callsFor(keyOf("L-after-stop"))).toHaveLength(0);
    expect(await queueDepth()).toBe(1);
  });

  it("a call that outlives the shutdown grace is aborted and handed back, then delivered by the next dispatcher", async () => {
    await putLead(kv, TENANT, "L-stuck");
    scripts.set("L-stuck", [{ status: 0, hang: true }]);
    const impatient = await startInProcess({
      nc,
      topology: topo,
      hooks: { hook: { url: receiver.url } },
      graceMs: 300,
    });
    try {
      const { key } = await publishDue(js, { tenant: TENANT, leadId: "L-stuck", delayS: 42 });
      await waitFor(() => receiver.callsFor(key).length === 1, { description: "the stuck call" });
      const started = Date.now();
      await impatient.handle.stop();
      // The grace, then at most the rest of the pull that was outstanding (3 s).
      expect(Date.now() - started).toBeLessThan(4_500);
      expect(impatient.handle.held).toBe(0);
      expect(impatient.logs.entries().some((e) => e.msg === "shutdown_grace_exceeded_handing_back")).toBe(
        true,
      );
      expect(await metricValue(impatient.registry, "dispatcher_released_total", { reason: "shutdown" })).toBe(
        1,
      );
      expect(await results("L-stuck")).toHaveLength(0);
    } finally {
      await impatient.stop();
    }
    const next = await startInProcess({ nc, topology: topo, hooks: { hook: { url: receiver.url } } });
    try {
      const call = await accepted("L-stuck");
      expect(call.body?.attempt).toBe(2);
      expect(call.headers["webhook-id"]).toBe(keyOf("L-stuck"));
    } finally {
      await next.stop();
    }
  });
});
