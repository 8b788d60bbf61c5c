// The firing path: the dispatcher consumes the timer stream's expiry markers itself (no
// followup.due hop) and delivers each through its channel, never before due_at, stopped by an
// outcome recorded meanwhile, at least once across a hand-back, and not twice when only the
// marker's ack was lost. Real nats-server, real HTTP hook; the timers are planted as the
// scheduler leaves them (its own tests pin that).

import {
  encodeEvent,
  type FollowupResult,
  idempotencyKey,
  leadKey,
  MARKER_REASON_HEADER,
  makeEvent,
  subjects,
  topology,
} from "@followup/contracts";
import { type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import { provisionTopology } from "@followup/service-kit";
import { type HookAnswer, type HookRecorder, startHookRecorder } from "@followup/system-tests/support";
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type InProcessDispatcher,
  metricValue,
  plantTimers,
  putLead,
  readStream,
  resultsOf,
  SECRET,
  startInProcess,
} from "./fixtures.js";

const TENANT = "acme";
const topo = topology();

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let leads: KV;
let receiver: HookRecorder;
const answers = new Map<string, HookAnswer[]>();
const cleanups: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  await provisionTopology(nc, topo);
  jsm = await jetstreamManager(nc);
  leads = await new Kvm(nc).open(topo.buckets.leads.bucket);
  answers.clear();
  receiver = await startHookRecorder({
    secret: SECRET,
    responder: (call) => answers.get(call.webhookId)?.[receiver.callsFor(call.webhookId).length - 1],
  });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  await receiver?.close();
  await nc?.close();
  await server?.cleanup();
});

async function dispatcher(options: { graceMs?: number } = {}): Promise<InProcessDispatcher> {
  const d = await startInProcess({ nc, topology: topo, hooks: { hook: { url: receiver.url } }, ...options });
  cleanups.push(() => d.stop());
  return d;
}

const keyOf = (leadId: string, step = 1) => idempotencyKey({ tenant: TENANT, leadId, step });

const results = (leadId: string) => resultsOf(nc, TENANT, leadId);

/** Whether the markers durable has delivered everything and holds nothing unacked. */
async function markersSettled(): Promise<boolean> {
  const { stream, durable } = topo.consumers.dispatchMarkers;
  const info = await jsm.consumers.info(stream, durable);
  return info.num_pending === 0 && info.num_ack_pending === 0 && info.delivered.stream_seq > 0;
}

async function nothingFor(forMs: number, probe: () => boolean, description: string): Promise<void> {
  const end = Date.now() + forMs;
  while (Date.now() < end) {
    if (probe()) throw new Error(description);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("a fired timer", () => {
  it("is delivered at due_at, never early, once; its result stored, the marker acked and kept, no followup.due, the plan unwritten", async () => {
    const d = await dispatcher();
    const leadIds = Array.from({ length: 40 }, (_, i) => `L-fire-${i}`);
    for (const leadId of leadIds) await putLead(leads, TENANT, leadId);
    // One second for all: the floor-rounded TTL makes each marker come up to a second early.
    const dueAt = new Date(Math.ceil((Date.now() + 2_500) / 1000) * 1000 + 400);
    const plans = await Promise.all(
      leadIds.map((leadId) => plantTimers(nc, { tenant: TENANT, leadId, steps: [{ dueAt, delayS: 60 }] })),
    );

    await waitFor(() => leadIds.every((id) => receiver.delivered.has(keyOf(id))), {
      description: "every fired timer at the hook",
      timeoutMs: 15_000,
    });
    for (const leadId of leadIds) {
      const call = receiver.delivered.get(keyOf(leadId))!;
      expect(call.receivedAt, `${leadId} delivered before due_at`).toBeGreaterThanOrEqual(dueAt.getTime());
      expect(call.receivedAt - dueAt.getTime(), `${leadId} late`).toBeLessThan(1_500);
      expect(call.verified).toBe(true);
      expect(call.headers["webhook-id"]).toBe(keyOf(leadId));
      expect(call.body).toMatchObject({
        lead_id: leadId,
        tenant: TENANT,
        step: 1,
        strategy: "60s",
        due_at: dueAt.toISOString(),
        attempt: 1,
      });
    }
    await waitFor(markersSettled, { description: "every marker acked" });
    expect(receiver.calls).toHaveLength(leadIds.length);

    const first = await waitFor(async () => (await results(leadIds[0]!))[0], { description: "a result" });
    expect(first).toMatchObject({
      result: "ok",
      attempt: 1,
      channel: "hook",
      idempotency_key: keyOf(leadIds[0]!),
    });
    const stored = await readStream<FollowupResult>(nc, topo.streams.results.name, "followup.result.>");
    expect(stored).toHaveLength(leadIds.length);
    // Results share atomic batches: fewer commits than results.
    const text = await d.registry.metrics();
    const batches = Number(/dispatcher_result_batch_size_count\{fell_back="false"\} (\d+)/.exec(text)?.[1]);
    expect(batches).toBeGreaterThan(0);
    expect(batches).toBeLessThan(leadIds.length);
    // The plan and the lead of each marker were read, in batched direct gets: every key read,
    // in fewer requests than markers.
    for (const bucket of [topo.buckets.plans.bucket, topo.buckets.leads.bucket]) {
      const sum = new RegExp(`dispatcher_kv_read_batch_size_sum\\{bucket="${bucket}"\\} (\\d+)`).exec(text);
      const count = new RegExp(`dispatcher_kv_read_batch_size_count\\{bucket="${bucket}"\\} (\\d+)`).exec(
        text,
      );
      expect(Number(sum?.[1]), `${bucket} keys read`).toBeGreaterThanOrEqual(leadIds.length);
      expect(Number(count?.[1]), `${bucket} requests`).toBeLessThan(leadIds.length);
    }

    // Nothing written but the results: no due follow-up, no deletion, no plan update.
    expect((await jsm.streams.info(topo.streams.followups.name)).state.last_seq).toBe(0);
    const marker = await jsm.streams.getMessage(topo.streams.timers.name, {
      last_by_subj: subjects.followupTimer(TENANT, leadIds[0]!, 1),
    });
    expect(marker?.header.get(MARKER_REASON_HEADER)).toBe("MaxAge");
    const planKv = await new Kvm(nc).open(topo.buckets.plans.bucket);
    const plan = await planKv.get(leadKey({ tenant: TENANT, leadId: leadIds[0]! }));
    expect(plan?.json()).toEqual(plans[0]);
  });

  it("of a lead's step stores the next step's timer before its ack: one timer per lead at a time, each step delivered once, in order", async () => {
    await dispatcher();
    const leadIds = ["L-chain-1", "L-chain-2", "L-chain-3"];
    for (const leadId of leadIds) await putLead(leads, TENANT, leadId);
    const first = new Date(Date.now() + 2_200);
    const steps = [
      { dueAt: first },
      { dueAt: new Date(first.getTime() + 2_000) },
      { dueAt: new Date(first.getTime() + 3_000) },
    ];
    for (const leadId of leadIds) await plantTimers(nc, { tenant: TENANT, leadId, steps });
    const timerOf = (leadId: string, step: number) =>
      jsm.streams.getMessage(topo.streams.timers.name, {
        last_by_subj: subjects.followupTimer(TENANT, leadId, step),
      });
    expect(await timerOf(leadIds[0]!, 2), "only the first step has a timer before it fires").toBeNull();

    await waitFor(() => leadIds.every((id) => receiver.delivered.has(keyOf(id, 3))), {
      description: "every lead's third step at the hook",
      timeoutMs: 15_000,
    });
    await waitFor(markersSettled, { description: "every marker acked" });
    for (const leadId of leadIds) {
      const calls = receiver.calls.filter((c) => c.body?.lead_id === leadId);
      expect(
        calls.map((c) => c.body?.step),
        `${leadId}: each step once, in order`,
      ).toEqual([1, 2, 3]);
      for (const [i, call] of calls.entries()) {
        expect(call.receivedAt, `${leadId} step ${i + 1} early`).toBeGreaterThanOrEqual(
          steps[i]!.dueAt.getTime(),
        );
      }
      for (const step of [2, 3]) {
        // Stored by the dispatcher (its source), expired since: its marker is what is left.
        const marker = await timerOf(leadId, step);
        expect(marker?.header.get(MARKER_REASON_HEADER), `${leadId} step ${step}`).toBe("MaxAge");
      }
    }
    // 3 timers and 3 markers per lead were ever stored: a timer stored twice would add to them.
    expect((await jsm.streams.info(topo.streams.timers.name)).state.last_seq).toBe(leadIds.length * 3 * 2);
  });

  it("holds at most MARKER_CONCURRENCY markers unacked (each one held makes every expiry cost the server more), and still delivers each once", async () => {
    const limit = 4;
    const d = await startInProcess({
      nc,
      topology: topo,
      hooks: { hook: { url: receiver.url, concurrency: 2 } },
      markerConcurrency: limit,
    });
    cleanups.push(() => d.stop());
    const leadIds = Array.from({ length: 24 }, (_, i) => `L-limit-${i}`);
    for (const leadId of leadIds) {
      await putLead(leads, TENANT, leadId);
      // A slow hook, so markers pile up behind its two calls in flight.
      answers.set(keyOf(leadId), [{ delayMs: 120 }]);
    }
    const dueAt = new Date(Math.ceil((Date.now() + 2_000) / 1000) * 1000);
    await Promise.all(
      leadIds.map((leadId) => plantTimers(nc, { tenant: TENANT, leadId, steps: [{ dueAt, delayS: 60 }] })),
    );

    const { stream, durable } = topo.consumers.dispatchMarkers;
    let mostUnacked = 0;
    let mostHeld = 0;
    await waitFor(
      async () => {
        const info = await jsm.consumers.info(stream, durable);
        mostUnacked = Math.max(mostUnacked, info.num_ack_pending);
        mostHeld = Math.max(mostHeld, d.handle.held);
        return leadIds.every((id) => receiver.delivered.has(keyOf(id)));
      },
      { description: "every fired timer at the hook", timeoutMs: 20_000, intervalMs: 20 },
    );
    await waitFor(markersSettled, { description: "every marker acked" });
    expect(mostUnacked).toBeLessThanOrEqual(limit);
    expect(mostHeld).toBeLessThanOrEqual(limit);
    // The limit was reached, so the bound above was tested, not just never approached.
    expect(mostUnacked).toBeGreaterThanOrEqual(3);
    expect(receiver.calls).toHaveLength(leadIds.length);
  });

  it("an outcome recorded while its marker is held stops it: no call", async () => {
    const d = await dispatcher();
    await putLead(leads, TENANT, "L-held");
    // A 2 s timer for a step due in 3.9 s: the marker is held for about 1.9 s (at most 2 s).
    const dueAt = new Date(Date.now() + 3_900);
    await plantTimers(nc, { tenant: TENANT, leadId: "L-held", steps: [{ dueAt, ttlS: 2 }] });
    await waitFor(() => d.handle.held === 1 && Date.now() < dueAt.getTime() - 300, {
      description: "the marker to be held before its due_at",
      timeoutMs: 5_000,
    });
    await putLead(leads, TENANT, "L-held", {
      outcome: { outcome: "booked", recorded_at: new Date().toISOString() },
    });

    await waitFor(markersSettled, { description: "the marker acked", timeoutMs: 5_000 });
    expect(Date.now()).toBeGreaterThanOrEqual(dueAt.getTime());
    expect(receiver.callsFor(keyOf("L-held"))).toHaveLength(0);
    expect(await metricValue(d.registry, "followups_stopped_at_delivery_total", { reason: "outcome" })).toBe(
      1,
    );
    expect(d.logs.entries().filter((e) => e.msg === "followup_stopped")).toEqual([
      expect.objectContaining({ lead_id: "L-held", step: 1, reason: "outcome" }),
    ]);
    expect(await results("L-held")).toEqual([]);
  });

  it("a cancelled plan or a cancelled step: acked without a call", async () => {
    await dispatcher();
    const dueAt = new Date(Date.now() + 1_200);
    await putLead(leads, TENANT, "L-plan-cancelled");
    await putLead(leads, TENANT, "L-step-cancelled");
    await putLead(leads, TENANT, "L-control");
    await plantTimers(nc, {
      tenant: TENANT,
      leadId: "L-plan-cancelled",
      steps: [{ dueAt }, { dueAt: new Date(dueAt.getTime() + 500) }],
      plan: (p) => ({ ...p, cancelled: { at: new Date().toISOString(), reason: "outcome:spam" } }),
    });
    await plantTimers(nc, {
      tenant: TENANT,
      leadId: "L-step-cancelled",
      steps: [{ dueAt }],
      plan: (p) => ({ ...p, steps: p.steps.map((s) => ({ ...s, state: "cancelled" as const })) }),
    });
    await plantTimers(nc, { tenant: TENANT, leadId: "L-control", steps: [{ dueAt }] });
    await waitFor(() => receiver.delivered.has(keyOf("L-control")), { description: "the control delivered" });
    await waitFor(markersSettled, { description: "every marker acked" });
    expect(receiver.calls.map((c) => c.webhookId)).toEqual([keyOf("L-control")]);
    // A cancelled plan gets no next timer either (its second step was never given one).
    const next = await jsm.streams.getMessage(topo.streams.timers.name, {
      last_by_subj: subjects.followupTimer(TENANT, "L-plan-cancelled", 2),
    });
    expect(next).toBeNull();
  });

  it("a lead's outcome stops it by the plan's stop_on: spam does not stop a plan that names booked only, nurture stops one that names it", async () => {
    const d = await dispatcher();
    const dueAt = new Date(Date.now() + 1_200);
    const outcome = (o: "spam" | "nurture") => ({
      outcome: { outcome: o, recorded_at: new Date().toISOString() },
    });
    await putLead(leads, TENANT, "L-booked-only", outcome("spam"));
    await putLead(leads, TENANT, "L-nurture", outcome("nurture"));
    await plantTimers(nc, {
      tenant: TENANT,
      leadId: "L-booked-only",
      steps: [{ dueAt }],
      plan: (p) => ({ ...p, stop_on: ["booked"] }),
    });
    await plantTimers(nc, {
      tenant: TENANT,
      leadId: "L-nurture",
      steps: [{ dueAt }],
      plan: (p) => ({ ...p, stop_on: ["nurture"] }),
    });
    await waitFor(() => receiver.delivered.has(keyOf("L-booked-only")), {
      description: "the spam lead delivered",
    });
    // Both markers come in the same second: wait for the nurture one's stop, not only for a
    // settled consumer (its marker may not be stored yet when the other's was delivered).
    await waitFor(
      async () =>
        (await metricValue(d.registry, "followups_stopped_at_delivery_total", { reason: "outcome" })) === 1,
      { description: "the nurture lead's follow-up stopped at delivery" },
    );
    await waitFor(markersSettled, { description: "every marker acked" });
    expect(receiver.calls.map((c) => c.webhookId)).toEqual([keyOf("L-booked-only")]);
    expect(await metricValue(d.registry, "followups_stopped_at_delivery_total", { reason: "outcome" })).toBe(
      1,
    );
  });

  it("a lead not stored yet at due time (its write still in intake's outbox) is waited for, then delivered once", async () => {
    const d = await dispatcher();
    const dueAt = new Date(Date.now() + 1_200);
    await plantTimers(nc, { tenant: TENANT, leadId: "L-late-lead", steps: [{ dueAt }] });
    await waitFor(() => d.logs.entries().some((e) => e.msg === "lead_not_stored_yet_retrying"), {
      description: "the marker to find no lead and wait",
      timeoutMs: 10_000,
    });
    expect(receiver.calls).toHaveLength(0);
    await putLead(leads, TENANT, "L-late-lead");

    const call = await waitFor(() => receiver.delivered.get(keyOf("L-late-lead")), {
      description: "the follow-up delivered once the lead is stored",
      timeoutMs: 10_000,
    });
    // Waiting is not an attempt: the marker was held, not handed back.
    expect(call.body?.attempt).toBe(1);
    await waitFor(markersSettled, { description: "the marker acked" });
    expect(receiver.calls).toHaveLength(1);
    expect(d.logs.entries().some((e) => e.msg === "followup_stopped")).toBe(false);
  });
});

describe("a fired timer whose plan cannot be read yet", () => {
  it("is held and asked about again, not discarded, and delivered once the plan reads", async () => {
    const d = await dispatcher();
    await putLead(leads, TENANT, "L-late-plan");
    const dueAt = new Date(Date.now() + 1_200);
    const plan = await plantTimers(nc, { tenant: TENANT, leadId: "L-late-plan", steps: [{ dueAt }] });
    // As a read during a broker's restart can find it: the plan not there (yet) at the marker.
    const plans = await new Kvm(nc).open(topo.buckets.plans.bucket);
    const key = leadKey({ tenant: TENANT, leadId: "L-late-plan" });
    await plans.purge(key);
    await waitFor(() => d.logs.entries().some((e) => e.msg === "plan_not_readable_yet_retrying"), {
      description: "the marker to find no plan and wait",
      timeoutMs: 10_000,
    });
    expect(receiver.calls).toHaveLength(0);
    await plans.put(key, JSON.stringify(plan));

    const call = await waitFor(() => receiver.delivered.get(keyOf("L-late-plan")), {
      description: "the follow-up delivered once the plan reads",
      timeoutMs: 10_000,
    });
    expect(call.body?.attempt).toBe(1);
    await waitFor(markersSettled, { description: "the marker acked" });
    expect(receiver.calls).toHaveLength(1);
    expect(d.logs.entries().some((e) => e.msg === "marker_without_planned_step_discarded")).toBe(false);
  });
});

describe("a marker delivered again", () => {
  it("after a hand-back before its result was stored: delivered again with the same webhook-id, counted as attempt 2", async () => {
    await putLead(leads, TENANT, "L-again");
    answers.set(keyOf("L-again"), [{ status: 0, hang: true }]);
    const impatient = await dispatcher({ graceMs: 300 });
    await plantTimers(nc, {
      tenant: TENANT,
      leadId: "L-again",
      steps: [{ dueAt: new Date(Date.now() + 1_100) }],
    });
    await waitFor(() => receiver.callsFor(keyOf("L-again")).length === 1, {
      description: "the first call, left hanging",
      timeoutMs: 10_000,
    });
    await impatient.stop();
    expect(await results("L-again")).toHaveLength(0);

    await dispatcher();
    const call = await waitFor(() => receiver.delivered.get(keyOf("L-again")), {
      description: "the follow-up delivered by the next dispatcher",
      timeoutMs: 10_000,
    });
    expect(call.headers["webhook-id"]).toBe(keyOf("L-again"));
    expect(call.body?.attempt).toBe(2);
    expect(receiver.callsFor(keyOf("L-again"))).toHaveLength(2);
    const stored = await waitFor(async () => (await results("L-again")).length === 1 && results("L-again"), {
      description: "one result",
    });
    expect(stored[0]).toMatchObject({ result: "ok", attempt: 2 });
  });

  it("after its result was stored (only the ack lost): acked after one read, no second call", async () => {
    await putLead(leads, TENANT, "L-acked-late");
    await plantTimers(nc, {
      tenant: TENANT,
      leadId: "L-acked-late",
      steps: [{ dueAt: new Date(Date.now() + 1_100) }],
    });
    // A dispatcher that delivered, stored the result and died before its ack reached the server.
    const { stream, durable } = topo.consumers.dispatchMarkers;
    const consumer = await jetstream(nc).consumers.get(stream, durable);
    const marker = await waitFor(
      async () => {
        const msg = await consumer.next({ expires: 1_000 });
        if (!msg) return null;
        if (msg.headers?.get(MARKER_REASON_HEADER) === "MaxAge") return msg;
        msg.ack();
        return null;
      },
      { description: "the marker", timeoutMs: 10_000 },
    );
    const result = makeEvent("followup.result.v1", {
      source: "/dispatcher",
      subject: "L-acked-late/1",
      tenant: TENANT,
      data: {
        lead_id: "L-acked-late",
        step: 1,
        delay_s: 30,
        due_at: new Date().toISOString(),
        idempotency_key: keyOf("L-acked-late"),
        channel: "hook",
        attempt: 1,
        result: "ok",
        status_code: 200,
        duration_ms: 3,
      },
    });
    await jetstream(nc).publish(subjects.followupResult(TENANT, "L-acked-late", 1), encodeEvent(result));
    marker.nak();

    const d = await dispatcher();
    await waitFor(() => d.logs.entries().some((e) => e.msg === "marker_redelivered_result_stored_already"), {
      description: "the redelivered marker to be recognised as settled",
      timeoutMs: 10_000,
    });
    await waitFor(markersSettled, { description: "the marker acked" });
    await nothingFor(500, () => receiver.calls.length > 0, "a settled follow-up was called again");
    expect(await results("L-acked-late")).toHaveLength(1);
  });
});
