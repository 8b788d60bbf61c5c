// The scheduler in this process against a real nats-server (one per test): qualifying leads
// become timers and then due follow-ups at their due times; what must not schedule does not;
// redeliveries, outcomes, duplicate markers, crash repair and malformed events.

import { encodeEvent, FollowupDue, type FollowupPlan, leadKey, subjects } from "@followup/contracts";
import { type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { MARKER_REASON_HEADER } from "../src/markers.js";
import { planLead, publishTimer } from "../src/timers.js";
import {
  consumerCaughtUp,
  type DueSeen,
  latenessSummary,
  readPlan,
  timerMessage,
  timersOfLead,
  timersStored,
  topo,
  watchDueQueue,
} from "./fixtures/broker.js";
import {
  type LeadFixture,
  lead,
  putLead,
  recordOutcome,
  scoredEvent,
  storedLead,
  submitLead,
} from "./fixtures/leads.js";
import { metricValue, runScheduler } from "./fixtures/scheduler.js";

/** Lateness allowed in a test (on an idle machine it is a few ms; this tolerates a loaded 2-core one). */
const MAX_LATENESS_MS = 1_500;

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
const cleanups: (() => Promise<unknown>)[] = [];
const lateness: number[] = [];

beforeEach(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  await nc?.close();
  await server?.cleanup();
});

afterAll(() => {
  if (lateness.length > 0)
    console.info(`due publish lateness vs due_at (in process): ${latenessSummary(lateness)}`);
});

async function scheduler(rule: Parameters<typeof runScheduler>[1] = {}, url = server.url) {
  const s = await runScheduler(url, rule);
  cleanups.push(s.stop);
  return s;
}

async function dueQueue(client = nc) {
  const queue = await watchDueQueue(client);
  cleanups.push(queue.stop);
  return queue;
}

/** Asserts never early (by the stream's store time and by receipt) and late by less than the bound. */
function expectOnTime(due: DueSeen): void {
  expect(due.storedAtMs, `step ${due.step} stored before its due_at`).toBeGreaterThanOrEqual(due.dueAtMs);
  expect(due.receivedAtMs, `step ${due.step} received before its due_at`).toBeGreaterThanOrEqual(due.dueAtMs);
  expect(due.receivedAtMs - due.dueAtMs, `step ${due.step} late`).toBeLessThan(MAX_LATENESS_MS);
  lateness.push(due.storedAtMs - due.dueAtMs);
}

async function planWith(fixture: LeadFixture, check: (plan: FollowupPlan) => boolean, description: string) {
  return waitFor(
    async () => {
      const plan = await readPlan(nc, fixture);
      return plan && check(plan) ? plan : null;
    },
    { description, timeoutMs: 10_000 },
  );
}

/** A bounded negative check: polls for `forMs` and fails the first time `probe` is true. */
async function nothingFor(forMs: number, probe: () => boolean | Promise<boolean>, description: string) {
  const end = Date.now() + forMs;
  while (Date.now() < end) {
    if (await probe())
      throw new Error(`${description} (seen ${end - Date.now()} ms before the window closed)`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("a qualifying lead", () => {
  it("becomes two due follow-ups at created_at + 2 s and + 4 s, in step order, never early", async () => {
    const s = await scheduler();
    const queue = await dueQueue();
    const fixture = lead({ predProb: 0.82 });
    const fired: { subject: string; reason: string | undefined }[] = [];
    const tail = nc.subscribe(subjects.followupsOfLead("fired", fixture.tenant, fixture.leadId));
    void (async () => {
      for await (const m of tail)
        fired.push({ subject: m.subject, reason: m.headers?.get(MARKER_REASON_HEADER) });
    })();
    cleanups.push(async () => tail.unsubscribe());

    await submitLead(nc, fixture);
    const plan = await timersStored(nc, jsm, fixture, 2);
    const created = fixture.createdAt.getTime();
    expect(plan.steps.map((st) => [st.step, st.delay_s, Date.parse(st.due_at) - created, st.state])).toEqual([
      [1, 2, 2000, "pending"],
      [2, 4, 4000, "pending"],
    ]);
    expect(await metricValue(s.registry, "followup_timers_pending")).toBe(2);
    const timer = await timerMessage(jsm, fixture, 1);
    expect(timer?.header.get("Nats-TTL"), "step 1's TTL is the whole seconds left, floored").toBe("1");
    expect(s.logsNamed("followups_enqueued")).toEqual([
      expect.objectContaining({ level: "info", lead_id: fixture.leadId, pred_prob: 0.82, count: 2 }),
    ]);

    const dues = await waitFor(() => queue.of(fixture.leadId).length >= 2 && queue.of(fixture.leadId), {
      description: "both follow-ups to become due",
      timeoutMs: 10_000,
    });
    expect(dues.map((d) => d.step)).toEqual([1, 2]);
    for (const due of dues) expectOnTime(due);

    const first = dues[0]!;
    // The due event is exactly what the contract (and so the dispatcher) expects.
    expect(FollowupDue.safeParse(JSON.parse(new TextDecoder().decode(first.body))).success).toBe(true);
    expect(first.subject).toBe(subjects.followupDue(fixture.tenant, fixture.leadId, 1));
    expect(first.event).toMatchObject({
      type: "followup.due.v1",
      source: "/scheduler",
      subject: `${fixture.leadId}/1`,
      tenant: fixture.tenant,
      data: {
        lead_id: fixture.leadId,
        step: 1,
        delay_s: 2,
        due_at: new Date(created + 2000).toISOString(),
        idempotency_key: `${fixture.tenant}:${fixture.leadId}:1`,
        channel: "hook",
        lead_created_at: fixture.createdAt.toISOString(),
        pred_prob: 0.82,
        replays: 0,
      },
    });
    expect(Date.parse(first.event.data.fired_at)).toBeLessThanOrEqual(first.storedAtMs);

    const settled = await planWith(
      fixture,
      (p) => p.steps.every((st) => st.state === "due"),
      "both steps due",
    );
    for (const step of settled.steps) {
      expect(Date.parse(step.due_published_at ?? "")).toBeGreaterThanOrEqual(Date.parse(step.due_at));
    }
    await waitFor(async () => (await timersOfLead(jsm, fixture)) === 0, {
      description: "the markers to be deleted once handled",
    });
    expect(fired.filter((f) => f.reason === "MaxAge").map((f) => f.subject)).toEqual([
      subjects.followupFired(fixture.tenant, fixture.leadId, 1),
      subjects.followupFired(fixture.tenant, fixture.leadId, 2),
    ]);
    expect(s.logsNamed("followup_due").map((l) => [l.step, typeof l.lateness_ms])).toEqual([
      [1, "number"],
      [2, "number"],
    ]);
    expect(await metricValue(s.registry, "followups_scheduled_total")).toBe(2);
    expect(await metricValue(s.registry, "followups_due_total")).toBe(2);
    expect(await metricValue(s.registry, "followup_timers_pending")).toBe(0);
    const text = await s.registry.metrics();
    expect(text).toMatch(/followup_marker_to_due_seconds_count\{service="scheduler"\} 2/);
    expect(text).toMatch(/followup_due_lateness_seconds_count\{service="scheduler"\} 2/);
  });
});

describe("leads that get no follow-ups", () => {
  it("below the threshold, with the engine disabled, with an empty schedule: none, each skipped with its reason", async () => {
    const cases = [
      { reason: "below_threshold", rule: { delays: [1] }, predProb: 0.69, control: true },
      { reason: "disabled", rule: { delays: [1], enabled: false }, predProb: 0.99, control: false },
      { reason: "empty_schedule", rule: { delays: [] }, predProb: 0.99, control: false },
    ] as const;
    await Promise.all(
      cases.map(async (c) => {
        const own = await startNatsServer();
        const client = await connect({ servers: own.url });
        cleanups.push(async () => {
          await client.close();
          await own.cleanup();
        });
        const s = await scheduler(c.rule, own.url);
        const queue = await dueQueue(client);
        const skipped = lead({ predProb: c.predProb });
        // Exactly at the threshold qualifies: the positive control that closes the negative window.
        const control = lead({ predProb: 0.7 });
        await submitLead(client, skipped);
        if (c.control) await submitLead(client, control);

        const plan = await waitFor(
          async () => {
            const kv = await new Kvm(client).open(topo.buckets.plans.bucket);
            const entry = await kv.get(leadKey(skipped));
            return entry?.operation === "PUT" ? (entry.json() as FollowupPlan) : null;
          },
          { description: `the ${c.reason} plan` },
        );
        expect(plan).toMatchObject({ skipped: c.reason, steps: [] });
        // The plan is visible to this test before the scheduler has heard its create acknowledged.
        await waitFor(() => s.logsNamed("followups_skipped").length > 0, {
          description: `the ${c.reason} lead to be logged as skipped`,
        });
        expect(s.logsNamed("followups_skipped")).toEqual([
          expect.objectContaining({ level: "debug", lead_id: skipped.leadId, reason: c.reason }),
        ]);
        expect(await metricValue(s.registry, "followups_skipped_total", { reason: c.reason })).toBe(1);
        const clientJsm = await jetstreamManager(client);
        expect(await timersOfLead(clientJsm, skipped)).toBe(0);

        if (c.control) {
          const due = await waitFor(() => queue.of(control.leadId)[0], {
            description: "the lead exactly at the threshold to become due",
          });
          expectOnTime(due);
        }
        // Had anything been scheduled for the skipped lead, it would be due 1 s after creation.
        const windowEnd = skipped.createdAt.getTime() + 1_000 + MAX_LATENESS_MS;
        await nothingFor(
          Math.max(windowEnd - Date.now(), 500),
          () => queue.of(skipped.leadId).length > 0,
          `a ${c.reason} lead became due`,
        );
        expect(await metricValue(s.registry, "followups_scheduled_total")).toBe(c.control ? 1 : 0);
      }),
    );
  });
});

describe("lead.scored redelivered", () => {
  it("within seconds: nothing new is scheduled and the pending timers are not pushed back", async () => {
    const s = await scheduler();
    const queue = await dueQueue();
    const fixture = lead();
    const { event } = await submitLead(nc, fixture);
    await timersStored(nc, jsm, fixture, 2);
    const before = await Promise.all([1, 2].map((step) => timerMessage(jsm, fixture, step)));

    const again = await submitLead(nc, fixture, { event, store: false });
    await waitFor(() => consumerCaughtUp(jsm, topo.consumers.scored, again.seq), {
      description: "the redelivered lead.scored to be handled",
    });
    const after = await Promise.all([1, 2].map((step) => timerMessage(jsm, fixture, step)));
    expect(after.map((m) => m?.seq)).toEqual(before.map((m) => m?.seq));
    expect(after.map((m) => m?.header.get("Nats-TTL"))).toEqual(before.map((m) => m?.header.get("Nats-TTL")));

    const dues = await waitFor(() => queue.of(fixture.leadId).length >= 2 && queue.of(fixture.leadId), {
      description: "both follow-ups to become due",
    });
    for (const due of dues) expectOnTime(due);
    await nothingFor(1_000, () => queue.of(fixture.leadId).length > 2, "a follow-up became due twice");
    expect(s.logsNamed("followups_enqueued")).toHaveLength(1);
    expect(await metricValue(s.registry, "followups_scheduled_total")).toBe(2);
  });

  it("after its follow-ups fired: no new follow-up (the plan remembers, not the duplicate window)", async () => {
    const s = await scheduler({ delays: [1, 2] });
    const queue = await dueQueue();
    const fixture = lead();
    const { event } = await submitLead(nc, fixture);
    await waitFor(() => queue.of(fixture.leadId).length >= 2, { description: "both follow-ups due" });
    await waitFor(async () => (await timersOfLead(jsm, fixture)) === 0, {
      description: "the markers deleted",
    });
    const planBefore = await readPlan(nc, fixture);

    const again = await submitLead(nc, fixture, { event, store: false });
    await waitFor(() => consumerCaughtUp(jsm, topo.consumers.scored, again.seq), {
      description: "the redelivered lead.scored to be handled",
    });
    expect(await timersOfLead(jsm, fixture)).toBe(0);
    expect(await readPlan(nc, fixture)).toEqual(planBefore);
    // Had it scheduled again, its steps (already past due) would fire within 1 s.
    await nothingFor(
      2_500,
      () => queue.of(fixture.leadId).length > 2,
      "a redelivered lead.scored scheduled again",
    );
    expect(await metricValue(s.registry, "followups_scheduled_total")).toBe(2);
    expect(await metricValue(s.registry, "followups_due_total")).toBe(2);
  });
});

describe("outcomes", () => {
  it("an outcome between the two steps: the second never becomes due", async () => {
    const s = await scheduler({ delays: [1, 3] });
    const queue = await dueQueue();
    const fixture = lead();
    await submitLead(nc, fixture);
    const first = await waitFor(() => queue.of(fixture.leadId)[0], { description: "step 1 due" });
    expectOnTime(first);

    await recordOutcome(nc, fixture, "booked");
    const plan = await planWith(fixture, (p) => p.cancelled !== undefined, "the plan to be cancelled");
    expect(plan.cancelled?.reason).toBe("outcome:booked");
    expect(plan.steps.map((st) => st.state)).toEqual(["due", "cancelled"]);
    expect(await timerMessage(jsm, fixture, 2), "step 2's timer is purged").toBeNull();
    expect(await metricValue(s.registry, "followups_cancelled_total", { stage: "pending" })).toBe(1);
    expect(s.logsNamed("followups_cancelled")).toEqual([
      expect.objectContaining({
        lead_id: fixture.leadId,
        outcome: "booked",
        pending_cancelled: 1,
        timers_purged: 1,
      }),
    ]);

    const windowEnd = fixture.createdAt.getTime() + 3_000 + MAX_LATENESS_MS;
    await nothingFor(windowEnd - Date.now(), () => queue.of(fixture.leadId).length > 1, "step 2 became due");
    expect(await metricValue(s.registry, "followups_due_total")).toBe(1);
  });

  it("an outcome stored on the lead (its event not yet handled) stops the step when it is due", async () => {
    const s = await scheduler({ delays: [1] });
    const queue = await dueQueue();
    const fixture = lead();
    await submitLead(nc, fixture);
    await timersStored(nc, jsm, fixture, 1);
    await putLead(
      nc,
      storedLead(fixture, { outcome: { outcome: "spam", recorded_at: new Date().toISOString() } }),
    );

    await planWith(
      fixture,
      (p) => p.steps[0]?.state === "cancelled",
      "step 1 to be cancelled at its due time",
    );
    expect(s.logsNamed("followup_stopped_at_due_time")).toEqual([
      expect.objectContaining({ lead_id: fixture.leadId, step: 1, reason: "outcome" }),
    ]);
    await nothingFor(1_000, () => queue.of(fixture.leadId).length > 0, "a stopped follow-up became due");
    expect(await metricValue(s.registry, "followups_cancelled_total", { stage: "pending" })).toBe(1);
  });

  it("an outcome before lead.scored: a cancelled plan, so the late lead.scored schedules nothing", async () => {
    const s = await scheduler();
    const fixture = lead();
    await putLead(nc, storedLead(fixture));
    await recordOutcome(nc, fixture, "unqualified");
    const plan = await planWith(fixture, (p) => p.cancelled !== undefined, "a cancelled plan");
    expect(plan).toMatchObject({ skipped: "stopped", steps: [], pred_prob: fixture.predProb });

    const { seq } = await submitLead(nc, fixture, { store: false });
    await waitFor(() => consumerCaughtUp(jsm, topo.consumers.scored, seq), {
      description: "lead.scored handled",
    });
    expect(await timersOfLead(jsm, fixture)).toBe(0);
    expect(await metricValue(s.registry, "followups_skipped_total", { reason: "stopped" })).toBe(1);
    expect(await metricValue(s.registry, "followups_scheduled_total")).toBe(0);
  });
});

describe("markers", () => {
  it("a lead not stored yet at due time (its write still in intake's outbox): asked again, due once it is there", async () => {
    const s = await scheduler({ delays: [1] });
    const queue = await dueQueue();
    const fixture = lead();
    await submitLead(nc, fixture, { store: false });
    await waitFor(() => s.logsNamed("lead_not_stored_yet_retrying").length > 0, {
      description: "the marker to find no lead and be retried",
      timeoutMs: 10_000,
    });
    expect(queue.of(fixture.leadId)).toEqual([]);
    await putLead(nc, storedLead(fixture));

    await waitFor(() => queue.of(fixture.leadId).length === 1, {
      description: "the follow-up to become due once the lead is stored",
      timeoutMs: 10_000,
    });
    expect(s.logsNamed("followup_stopped_at_due_time")).toEqual([]);
    expect((await readPlan(nc, fixture))?.steps[0]?.state).toBe("due");
  });

  it("a marker delivered twice produces one due follow-up, also when the plan missed the first", async () => {
    const s = await scheduler({ delays: [1] });
    const queue = await dueQueue();
    const fixture = lead();
    await submitLead(nc, fixture);
    await waitFor(() => queue.of(fixture.leadId)[0], { description: "step 1 due" });
    await waitFor(async () => (await timersOfLead(jsm, fixture)) === 0, {
      description: "the marker deleted",
    });

    const timerSubject = subjects.followupTimer(fixture.tenant, fixture.leadId, 1);
    const marker = headers();
    marker.set(MARKER_REASON_HEADER, "MaxAge");
    // The same marker again (as after a lost ack): the plan says the step is due already.
    await jetstream(nc).publish(timerSubject, new Uint8Array(), { headers: marker });
    await waitFor(async () => (await timersOfLead(jsm, fixture)) === 0, {
      description: "the second marker handled",
    });
    expect(s.logsNamed("marker_seen_again_step_already_due")).toHaveLength(1);

    // A handler that published and then died before marking the step: the plan still says pending.
    const kv = await new Kvm(nc).open(topo.buckets.plans.bucket);
    const entry = await kv.get(leadKey(fixture));
    const plan = entry!.json() as FollowupPlan;
    const reverted = { ...plan, steps: plan.steps.map((st) => ({ ...st, state: "pending" as const })) };
    await kv.update(leadKey(fixture), JSON.stringify(reverted), entry!.revision);
    await jetstream(nc).publish(timerSubject, new Uint8Array(), { headers: marker });
    await waitFor(() => s.logsNamed("followup_due_already_published").length === 1, {
      description: "the republish to be dropped by the work queue's duplicate window",
    });
    await planWith(fixture, (p) => p.steps[0]?.state === "due", "the step due again in the plan");
    await nothingFor(
      1_000,
      () => queue.of(fixture.leadId).length > 1,
      "a marker seen twice made two due follow-ups",
    );
    expect(await metricValue(s.registry, "followups_due_total")).toBe(1);
  });

  it("crash repair: a plan whose timers may be missing gets the missing ones; an existing timer is not replaced", async () => {
    const s = await scheduler();
    const queue = await dueQueue();
    const fixture = lead();
    await putLead(nc, storedLead(fixture));
    // What a scheduler killed after creating the plan and publishing step 1's timer left behind.
    const plan = planLead(scoredEvent(fixture), { enabled: true, topP: 0.7, delays: [2, 4] }, new Date());
    const kv = await new Kvm(nc).open(topo.buckets.plans.bucket);
    await kv.create(leadKey(fixture), JSON.stringify(plan));
    expect(await publishTimer(fixture, plan.steps[0]!, { js: jetstream(nc), now: () => new Date() })).toBe(
      "published",
    );
    const existing = await timerMessage(jsm, fixture, 1);

    await submitLead(nc, fixture, { store: false });
    await waitFor(() => s.logsNamed("followups_enqueued").length > 0, {
      description: "the missing timer to be stored",
    });
    expect((await timerMessage(jsm, fixture, 1))?.seq, "step 1's timer was replaced").toBe(existing?.seq);
    expect(await timerMessage(jsm, fixture, 2), "step 2's timer was not published").not.toBeNull();
    expect(s.logsNamed("followups_enqueued")).toEqual([
      expect.objectContaining({ lead_id: fixture.leadId, count: 2, timers_already_stored: 1 }),
    ]);

    const dues = await waitFor(() => queue.of(fixture.leadId).length >= 2 && queue.of(fixture.leadId), {
      description: "both follow-ups due",
    });
    expect(dues.map((d) => d.step)).toEqual([1, 2]);
    for (const due of dues) expectOnTime(due);
  });
});

describe("malformed events", () => {
  it("a lead.scored that breaks its contract is terminated, logged and counted, and does not block the next", async () => {
    const s = await scheduler({ delays: [1] });
    const queue = await dueQueue();
    const js = jetstream(nc);
    const bad = lead();
    const badEvent = { ...scoredEvent(bad), data: { ...scoredEvent(bad).data, pred_prob: "high" } };
    await js.publish(subjects.leadScored(bad.tenant, bad.leadId), encodeEvent(badEvent));
    // A valid event on another lead's subject breaks the subject contract.
    const other = lead();
    await js.publish(subjects.leadScored(other.tenant, other.leadId), encodeEvent(scoredEvent(bad)));
    await js.publish(subjects.leadScored(bad.tenant, bad.leadId), "not json");
    const good = lead();
    const { seq } = await submitLead(nc, good);

    const due = await waitFor(() => queue.of(good.leadId)[0], {
      description: "the valid lead behind them to be due",
    });
    expectOnTime(due);
    await waitFor(() => consumerCaughtUp(jsm, topo.consumers.scored, seq), { description: "all handled" });
    expect(await metricValue(s.registry, "scheduler_invalid_events_total", { consumer: "scored" })).toBe(3);
    const errors = s.logsNamed("invalid_event_terminated");
    expect(errors.map((e) => e.level)).toEqual(["error", "error", "error"]);
    expect(errors[0]?.reason).toMatch(/data\.pred_prob/);
    expect(errors[1]?.reason).toMatch(/do not match the subject/);
    expect(errors[2]?.reason).toMatch(/not JSON/);
    const info = await jsm.consumers.info(topo.streams.leads.name, topo.consumers.scored.durable);
    expect(info.num_redelivered, "a terminated event was redelivered").toBe(0);
    expect(await readPlan(nc, bad)).toBeNull();
    expect(await readPlan(nc, other)).toBeNull();
  });
});
