// The scheduler in this process against a real nats-server (one per test): qualifying leads
// become timers whose markers come at their due times (the dispatcher delivers them: its
// tests); what must not schedule does not; redeliveries, outcomes, crash repair and malformed
// events.

import { encodeEvent, type FollowupPlan, leadKey, MARKER_REASON_HEADER, subjects } from "@followup/contracts";
import { type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { planLead } from "../src/timers.js";
import {
  consumerCaughtUp,
  latenessSummary,
  type MarkerSeen,
  readPlan,
  timerMessage,
  timersOfLead,
  timersStored,
  topo,
  watchMarkers,
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
    console.info(`marker lateness vs due_at (in process): ${latenessSummary(lateness)}`);
});

async function scheduler(rule: Parameters<typeof runScheduler>[1] = {}, url = server.url) {
  const s = await runScheduler(url, rule);
  cleanups.push(s.stop);
  return s;
}

async function markers(client = nc) {
  const queue = await watchMarkers(client);
  cleanups.push(queue.stop);
  return queue;
}

/**
 * A timer's TTL is floor-rounded whole seconds, so its marker comes at most one second before
 * due_at (the dispatcher holds the rest: never delivered early, its tests) and late by less than
 * the bound.
 */
const EARLY_BY_TTL_FLOOR_MS = 1_000;
function expectOnTime(marker: MarkerSeen): void {
  expect(marker.storedAtMs, `step ${marker.step} fired more than 1 s early`).toBeGreaterThanOrEqual(
    marker.dueAtMs - EARLY_BY_TTL_FLOOR_MS,
  );
  expect(marker.receivedAtMs - marker.dueAtMs, `step ${marker.step} late`).toBeLessThan(MAX_LATENESS_MS);
  lateness.push(marker.storedAtMs - marker.dueAtMs);
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
  it("becomes two timers that fire at created_at + 2 s and + 4 s, in step order; the markers stay, the plan is not written", async () => {
    const s = await scheduler();
    const queue = await markers();
    const fixture = lead({ predProb: 0.82 });
    const fired: { subject: string; reason: string | undefined }[] = [];
    const tail = nc.subscribe(subjects.followupsOfLead("fired", fixture.tenant, fixture.leadId));
    void (async () => {
      for await (const m of tail)
        fired.push({ subject: m.subject, reason: m.headers?.get(MARKER_REASON_HEADER) });
    })();
    cleanups.push(async () => tail.unsubscribe());

    await submitLead(nc, fixture);
    const plan = await timersStored(nc, jsm, fixture, 1);
    const created = fixture.createdAt.getTime();
    expect(plan.steps.map((st) => [st.step, st.delay_s, Date.parse(st.due_at) - created, st.state])).toEqual([
      [1, 2, 2000, "pending"],
      [2, 4, 4000, "pending"],
    ]);
    // One timer per lead at a time: step 2's is stored when step 1 fires (by the dispatcher).
    expect(await metricValue(s.registry, "followup_timers_pending")).toBe(1);
    expect(await timerMessage(jsm, fixture, 2), "step 2's timer before step 1 fired").toBeNull();
    const timer = await timerMessage(jsm, fixture, 1);
    expect(timer?.header.get("Nats-TTL"), "step 1's TTL is the whole seconds left, floored").toBe("1");
    expect(s.logsNamed("followups_enqueued")).toEqual([
      expect.objectContaining({ level: "info", lead_id: fixture.leadId, pred_prob: 0.82, count: 2 }),
    ]);

    const fires = await waitFor(() => queue.of(fixture.leadId).length >= 2 && queue.of(fixture.leadId), {
      description: "both timers to fire",
      timeoutMs: 10_000,
    });
    expect(fires.map((d) => d.step)).toEqual([1, 2]);
    for (const marker of fires) expectOnTime(marker);

    // The firing path writes nothing of the scheduler's: the plan stays as planned and each
    // marker stays on its step's subject (until its TTL), which is what keeps the step fired.
    expect(await readPlan(nc, fixture)).toEqual(plan);
    const kept = await Promise.all([1, 2].map((step) => timerMessage(jsm, fixture, step)));
    expect(kept.map((m) => m?.header.get(MARKER_REASON_HEADER))).toEqual(["MaxAge", "MaxAge"]);
    expect(fired.filter((f) => f.reason === "MaxAge").map((f) => f.subject)).toEqual([
      subjects.followupFired(fixture.tenant, fixture.leadId, 1),
      subjects.followupFired(fixture.tenant, fixture.leadId, 2),
    ]);
    expect(await metricValue(s.registry, "followups_scheduled_total")).toBe(2);
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
        const queue = await markers(client);
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
            description: "the timer of the lead exactly at the threshold to fire",
          });
          expectOnTime(due);
        }
        // Had anything been scheduled for the skipped lead, it would be due 1 s after creation.
        const windowEnd = skipped.createdAt.getTime() + 1_000 + MAX_LATENESS_MS;
        await nothingFor(
          Math.max(windowEnd - Date.now(), 500),
          () => queue.of(skipped.leadId).length > 0,
          `a ${c.reason} lead's timer fired`,
        );
        expect(await metricValue(s.registry, "followups_scheduled_total")).toBe(c.control ? 1 : 0);
      }),
    );
  });
});

describe("lead.scored redelivered", () => {
  it("within seconds: nothing new is scheduled and the pending timers are not pushed back", async () => {
    const s = await scheduler();
    const queue = await markers();
    const fixture = lead();
    const { event } = await submitLead(nc, fixture);
    await timersStored(nc, jsm, fixture, 1);
    const before = await Promise.all([1, 2].map((step) => timerMessage(jsm, fixture, step)));

    const again = await submitLead(nc, fixture, { event, store: false });
    await waitFor(() => consumerCaughtUp(jsm, topo.consumers.scored, again.seq), {
      description: "the redelivered lead.scored to be handled",
    });
    const after = await Promise.all([1, 2].map((step) => timerMessage(jsm, fixture, step)));
    expect(after.map((m) => m?.seq)).toEqual(before.map((m) => m?.seq));
    expect(after.map((m) => m?.header.get("Nats-TTL"))).toEqual(before.map((m) => m?.header.get("Nats-TTL")));

    const dues = await waitFor(() => queue.of(fixture.leadId).length >= 2 && queue.of(fixture.leadId), {
      description: "both timers to fire",
    });
    for (const due of dues) expectOnTime(due);
    await nothingFor(1_000, () => queue.of(fixture.leadId).length > 2, "a timer fired twice");
    expect(s.logsNamed("followups_enqueued")).toHaveLength(1);
    expect(await metricValue(s.registry, "followups_scheduled_total")).toBe(2);
  });

  it("after its follow-ups fired: no timer is stored again (each step's marker is still on its subject)", async () => {
    const s = await scheduler({ delays: [1, 2] });
    const queue = await markers();
    const fixture = lead();
    const { event } = await submitLead(nc, fixture);
    await waitFor(() => queue.of(fixture.leadId).length >= 2, { description: "both timers fired" });
    const planBefore = await readPlan(nc, fixture);
    expect(
      planBefore?.steps.map((st) => st.state),
      "the firing path leaves the plan alone",
    ).toEqual(["pending", "pending"]);
    const markersBefore = await Promise.all([1, 2].map((step) => timerMessage(jsm, fixture, step)));

    const again = await submitLead(nc, fixture, { event, store: false });
    await waitFor(() => consumerCaughtUp(jsm, topo.consumers.scored, again.seq), {
      description: "the redelivered lead.scored to be handled",
    });
    const markersAfter = await Promise.all([1, 2].map((step) => timerMessage(jsm, fixture, step)));
    expect(markersAfter.map((m) => [m?.seq, m?.header.get(MARKER_REASON_HEADER)])).toEqual(
      markersBefore.map((m) => [m?.seq, "MaxAge"]),
    );
    expect(await readPlan(nc, fixture)).toEqual(planBefore);
    // Had it scheduled again, its steps (already past due) would fire within 1 s.
    await nothingFor(
      2_500,
      () => queue.of(fixture.leadId).length > 2,
      "a redelivered lead.scored scheduled again",
    );
    expect(await metricValue(s.registry, "followups_scheduled_total")).toBe(2);
  });
});

describe("outcomes", () => {
  it("an outcome between the two steps: the second never fires", async () => {
    const s = await scheduler({ delays: [1, 3] });
    const queue = await markers();
    const fixture = lead();
    await submitLead(nc, fixture);
    const first = await waitFor(() => queue.of(fixture.leadId)[0], { description: "step 1 fired" });
    expectOnTime(first);
    await waitFor(() => Date.now() >= first.dueAtMs, { description: "step 1's due_at to pass" });

    await recordOutcome(nc, fixture, "booked");
    // followups_cancelled is logged once the plan is cancelled and then its timers purged.
    await waitFor(() => s.logsNamed("followups_cancelled").length > 0, {
      description: "the outcome handled",
    });
    const plan = await planWith(fixture, (p) => p.cancelled !== undefined, "the plan to be cancelled");
    expect(plan.cancelled?.reason).toBe("outcome:booked");
    // Step 1 was due already: what became of it is the dispatcher's (delivered, or stopped by
    // the outcome at its next attempt); the plan cancels what had not fired.
    expect(plan.steps.map((st) => st.state)).toEqual(["pending", "cancelled"]);
    expect(await timerMessage(jsm, fixture, 2), "step 2's timer is purged").toBeNull();
    expect(await timerMessage(jsm, fixture, 1), "step 1's marker is purged with it").toBeNull();
    expect(await metricValue(s.registry, "followups_cancelled_total", { stage: "pending" })).toBe(1);
    expect(s.logsNamed("followups_cancelled")).toEqual([
      expect.objectContaining({
        lead_id: fixture.leadId,
        outcome: "booked",
        pending_cancelled: 1,
        timers_purged: 2,
      }),
    ]);

    const windowEnd = fixture.createdAt.getTime() + 3_000 + MAX_LATENESS_MS;
    await nothingFor(windowEnd - Date.now(), () => queue.of(fixture.leadId).length > 1, "step 2 fired");
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

describe("crash repair", () => {
  it("crash repair: a plan whose timer may be missing gets it; an existing timer is not replaced", async () => {
    const s = await scheduler();
    const queue = await markers();
    const fixture = lead();
    await putLead(nc, storedLead(fixture));
    // What a scheduler killed after creating the plan, before publishing its timer, left behind.
    const plan = planLead(scoredEvent(fixture), { enabled: true, topP: 0.7, delays: [2, 4] }, new Date());
    const kv = await new Kvm(nc).open(topo.buckets.plans.bucket);
    await kv.create(leadKey(fixture), JSON.stringify(plan));

    await submitLead(nc, fixture, { store: false });
    await waitFor(() => s.logsNamed("followups_enqueued").length > 0, {
      description: "the missing timer to be stored",
    });
    const stored = await timerMessage(jsm, fixture, 1);
    expect(stored, "step 1's timer").not.toBeNull();
    expect(await timerMessage(jsm, fixture, 2), "step 2's timer waits for step 1 to fire").toBeNull();
    expect(s.logsNamed("followups_enqueued")).toEqual([
      expect.objectContaining({ lead_id: fixture.leadId, count: 2 }),
    ]);

    // Delivered again (the copy that repaired it crashed before its ack): the timer stays.
    const again = await submitLead(nc, fixture, { store: false });
    await waitFor(() => consumerCaughtUp(jsm, topo.consumers.scored, again.seq), {
      description: "the second redelivery to be handled",
    });
    expect((await timerMessage(jsm, fixture, 1))?.seq, "step 1's timer was replaced").toBe(stored?.seq);
    expect(s.logsNamed("followups_enqueued")).toHaveLength(1);

    const dues = await waitFor(() => queue.of(fixture.leadId).length >= 2 && queue.of(fixture.leadId), {
      description: "both timers fired",
    });
    expect(dues.map((d) => d.step)).toEqual([1, 2]);
    for (const due of dues) expectOnTime(due);
  });
});

describe("malformed events", () => {
  it("a lead.scored that breaks its contract is terminated, logged and counted, and does not block the next", async () => {
    const s = await scheduler({ delays: [1] });
    const queue = await markers();
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
      description: "the valid lead's timer behind them to fire",
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
