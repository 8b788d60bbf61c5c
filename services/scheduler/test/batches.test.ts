// lead.scored in batches against a real nats-server: plans as one atomic batch, timers in atomic
// batches, the per-lead fallback when a batch is refused, and the crash window between the two.

import { encodeEvent, followupMsgId, leadKey, subjects } from "@followup/contracts";
import { waitFor } from "@followup/nats-harness";
import { createMetricsRegistry } from "@followup/service-kit";
import { type JsMsg, jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { describe, expect, it } from "vitest";
import { createSchedulerMetrics } from "../src/metrics.js";
import { PlanStore } from "../src/plans.js";
import type { FollowupRule } from "../src/schedule.js";
import { handleScoredBatch, planLead, publishTimer, type TimerDeps } from "../src/timers.js";
import {
  brokerPerTest,
  consumerCaughtUp,
  readPlan,
  timerMessage,
  timersOfLead,
  topo,
} from "./fixtures/broker.js";
import { type LeadFixture, lead, scoredEvent } from "./fixtures/leads.js";
import { capturedLogger, metricValue, runScheduler } from "./fixtures/scheduler.js";

const broker = brokerPerTest({ provision: true });
/** Far enough out that nothing fires during a test. */
const RULE: FollowupRule = { enabled: true, topP: 0.7, delays: [3600, 7200] };

/** Publishes the leads' lead.scored events; resolves with the last one's stream sequence. */
async function publishScored(fixtures: LeadFixture[]): Promise<number> {
  const js = jetstream(broker.nc);
  let seq = 0;
  for (const fixture of fixtures) {
    seq = (
      await js.publish(subjects.leadScored(fixture.tenant, fixture.leadId), encodeEvent(scoredEvent(fixture)))
    ).seq;
  }
  return seq;
}

/** The handler's dependencies in this process, with its log lines and its invalid events captured. */
async function handlerDeps() {
  const js = jetstream(broker.nc);
  const kvm = new Kvm(broker.nc);
  const { logger, logs, logsNamed } = capturedLogger();
  const registry = createMetricsRegistry("scheduler");
  const bucket = topo.buckets.plans.bucket;
  const deps: TimerDeps = {
    js,
    jsm: broker.jsm,
    plans: new PlanStore(await kvm.open(bucket), js, bucket),
    leads: await kvm.open(topo.buckets.leads.bucket),
    topology: topo,
    metrics: createSchedulerMetrics(registry),
    logger,
    now: () => new Date(),
    rule: RULE,
  };
  const invalid: { msg: JsMsg; err: Error }[] = [];
  return {
    deps,
    logs,
    registry,
    invalid,
    logsNamed,
    handle: (msgs: JsMsg[]) => handleScoredBatch(msgs, (msg, err) => invalid.push({ msg, err }), deps),
  };
}

/** The next `count` lead.scored deliveries of the scored durable, as one batch. */
async function pull(count: number): Promise<JsMsg[]> {
  const { stream, durable } = topo.consumers.scored;
  const consumer = await jetstream(broker.nc).consumers.get(stream, durable);
  const msgs: JsMsg[] = [];
  const batch = await consumer.fetch({ max_messages: count, expires: 5_000 });
  for await (const msg of batch) {
    msgs.push(msg);
    if (msgs.length === count) break;
  }
  expect(msgs).toHaveLength(count);
  return msgs;
}

/** Every timer message in FOLLOWUP_TIMERS, by subject: its sequence. */
async function timerSequences(): Promise<Map<string, number>> {
  const info = await broker.jsm.streams.info(topo.streams.timers.name, { subjects_filter: ">" });
  const seqs = new Map<string, number>();
  for (const subject of Object.keys(info.state.subjects ?? {})) {
    const msg = await broker.jsm.streams.getMessage(topo.streams.timers.name, { last_by_subj: subject });
    seqs.set(subject, msg!.seq);
  }
  return seqs;
}

/** The timers the scheduler stores: one per lead, its first step's (the dispatcher writes the next). */
function timerSubjects(fixtures: LeadFixture[]): string[] {
  return fixtures.map((f) => subjects.followupTimer(f.tenant, f.leadId, 1)).sort();
}

describe("lead.scored in batches", () => {
  it("a backlog of leads: each plan and each timer (subject, TTL, msg id) stored once, in a few atomic batches", async () => {
    const fixtures = Array.from({ length: 300 }, () => lead());
    const lastSeq = await publishScored(fixtures);
    const s = await runScheduler(broker.server.url, RULE);
    broker.cleanups.push(s.stop);
    await waitFor(() => consumerCaughtUp(broker.jsm, topo.consumers.scored, lastSeq), {
      description: "every lead.scored handled",
      timeoutMs: 20_000,
    });

    const seqs = await timerSequences();
    expect([...seqs.keys()].sort()).toEqual(timerSubjects(fixtures));
    const batchIds = new Set<string>();
    for (const fixture of fixtures) {
      const plan = await readPlan(broker.nc, fixture);
      expect(
        plan?.steps.map((st) => [st.step, st.state]),
        fixture.leadId,
      ).toEqual([
        [1, "pending"],
        [2, "pending"],
      ]);
      const step = 1;
      const timer = await timerMessage(broker.jsm, fixture, step);
      const ttl = Number(timer?.header.get("Nats-TTL"));
      expect(ttl).toBeGreaterThan(RULE.delays[step - 1]! - 60);
      expect(ttl).toBeLessThanOrEqual(RULE.delays[step - 1]!);
      expect(timer?.header.get("Nats-Msg-Id")).toBe(followupMsgId({ ...fixture, step }));
      const id = timer?.header.get("Nats-Batch-Id");
      if (id) batchIds.add(id);
      expect(
        await timerMessage(broker.jsm, fixture, 2),
        "step 2's timer waits for step 1 to fire",
      ).toBeNull();
    }
    // 300 timers in batches: far fewer batches than timers (a lone first lead may go alone).
    expect(batchIds.size).toBeGreaterThan(0);
    expect(batchIds.size).toBeLessThan(60);
    expect(await metricValue(s.registry, "followups_scheduled_total")).toBe(600);
    expect(s.logsNamed("followups_enqueued")).toHaveLength(300);
  });

  it("the same batch delivered again schedules nothing twice and replaces no timer", async () => {
    const fixtures = Array.from({ length: 20 }, () => lead());
    await publishScored(fixtures);
    const h = await handlerDeps();
    const msgs = await pull(20);
    await h.handle(msgs);
    const first = await timerSequences();
    expect([...first.keys()].sort()).toEqual(timerSubjects(fixtures));

    await h.handle(msgs);
    expect(await timerSequences()).toEqual(first);
    expect(await metricValue(h.registry, "followups_scheduled_total")).toBe(40);
    expect(h.logsNamed("followups_enqueued")).toHaveLength(20);
    expect(h.logsNamed("plans_batch_rejected_lead_by_lead")).toHaveLength(1);
  });

  it("one lead of the batch planned already (its timers missing): the others and that one get their timers, once", async () => {
    const fixtures = Array.from({ length: 10 }, () => lead());
    await publishScored(fixtures);
    const h = await handlerDeps();
    const planned = fixtures[4]!;
    await h.deps.plans.create(planned, planLead(scoredEvent(planned), RULE, new Date()));

    await h.handle(await pull(10));
    expect(h.logsNamed("plans_batch_rejected_lead_by_lead")).toHaveLength(1);
    expect([...(await timerSequences()).keys()].sort()).toEqual(timerSubjects(fixtures));
    for (const fixture of fixtures) expect(await timersOfLead(broker.jsm, fixture)).toBe(1);
    expect(await metricValue(h.registry, "followups_scheduled_total")).toBe(20);
  });

  it("crash after the plans' batch, before the timers: the redelivery repairs every timer, exactly once", async () => {
    const fixtures = Array.from({ length: 12 }, () => lead());
    await publishScored(fixtures);
    const h = await handlerDeps();
    // What a copy killed between its two batches left: every plan, no timer, nothing acked.
    await h.deps.plans.createAll(
      fixtures.map((f) => ({ ref: f, plan: planLead(scoredEvent(f), RULE, new Date()) })),
    );
    expect(await timerSequences()).toEqual(new Map());

    const msgs = await pull(12);
    await h.handle(msgs);
    const repaired = await timerSequences();
    expect([...repaired.keys()].sort()).toEqual(timerSubjects(fixtures));
    expect(h.logsNamed("followups_enqueued")).toHaveLength(12);

    await h.handle(msgs);
    expect(await timerSequences(), "a timer was stored twice or replaced").toEqual(repaired);
    expect(await metricValue(h.registry, "followups_scheduled_total")).toBe(24);
  });

  it("the plans' commit fails (no answer): no timer of the batch is stored, and the redelivery stores each once", async () => {
    const fixtures = Array.from({ length: 10 }, () => lead());
    await publishScored(fixtures);
    const h = await handlerDeps();
    const plans = h.deps.plans;
    // The timers are sent while the plans commit; a plans' batch that never answers must leave
    // them uncommitted (abandoned), so that no timer can fire without its plan.
    const failing = Object.create(plans) as PlanStore;
    failing.createAll = () => Promise.reject(new Error("TIMEOUT"));
    const msgs = await pull(10);
    await expect(handleScoredBatch(msgs, () => {}, { ...h.deps, plans: failing })).rejects.toThrow("TIMEOUT");
    expect(await timerSequences(), "a timer was stored without its plan").toEqual(new Map());

    await h.handle(msgs);
    expect([...(await timerSequences()).keys()].sort()).toEqual(timerSubjects(fixtures));
    for (const fixture of fixtures) expect(await readPlan(broker.nc, fixture)).not.toBeNull();
    expect(await metricValue(h.registry, "followups_scheduled_total")).toBe(20);
  });

  it("a timer subject that holds a timer already: that timers' batch goes one by one, the existing timer stays", async () => {
    const fixtures = Array.from({ length: 8 }, () => lead());
    await publishScored(fixtures);
    const h = await handlerDeps();
    const early = fixtures[2]!;
    const plan = planLead(scoredEvent(early), RULE, new Date());
    expect(await publishTimer(early, plan.steps[0]!, h.deps)).toBe("published");
    const existing = await timerMessage(broker.jsm, early, 1);

    await h.handle(await pull(8));
    expect(h.logsNamed("timers_batch_rejected_one_by_one")).toHaveLength(1);
    expect(h.logsNamed("plans_batch_rejected_lead_by_lead")).toHaveLength(0);
    expect((await timerMessage(broker.jsm, early, 1))?.seq, "the existing timer was replaced").toBe(
      existing?.seq,
    );
    expect([...(await timerSequences()).keys()].sort()).toEqual(timerSubjects(fixtures));
    // Its timer was there: taken for a lead scheduled before (a redelivery), not counted again.
    expect(h.logsNamed("followups_enqueued").map((l) => l.lead_id)).not.toContain(early.leadId);
    expect(await metricValue(h.registry, "followups_scheduled_total")).toBe(14);
  });

  it("a lead whose every step was due longer ago than the marker TTL gets its plan and no timer; the rest of the batch theirs", async () => {
    const old = lead({ createdAt: new Date(Date.now() - 30 * 24 * 3_600_000) });
    const fresh = Array.from({ length: 4 }, () => lead());
    await publishScored([old, ...fresh]);
    const h = await handlerDeps();
    await h.handle(await pull(5));
    expect([...(await timerSequences()).keys()].sort()).toEqual(timerSubjects(fresh));
    expect(await readPlan(broker.nc, old)).not.toBeNull();
    expect(await timersOfLead(broker.jsm, old)).toBe(0);
    expect(h.logsNamed("followups_enqueued")).toHaveLength(4);
  });

  it("an invalid event inside a batch is handed to `invalid`; the rest are scheduled and acked", async () => {
    const fixtures = Array.from({ length: 6 }, () => lead());
    const js = jetstream(broker.nc);
    await publishScored(fixtures.slice(0, 3));
    const bad = lead();
    await js.publish(subjects.leadScored(bad.tenant, bad.leadId), "not json");
    const lastSeq = await publishScored(fixtures.slice(3));
    const h = await handlerDeps();

    await h.handle(await pull(7));
    expect(h.invalid.map((i) => i.msg.subject)).toEqual([subjects.leadScored(bad.tenant, bad.leadId)]);
    expect(h.invalid[0]?.err.message).toMatch(/not JSON/);
    expect([...(await timerSequences()).keys()].sort()).toEqual(timerSubjects(fixtures));
    expect(await readPlan(broker.nc, bad)).toBeNull();
    // Acked: nothing is pending but the invalid one, which the consumer loop terminates.
    await waitFor(
      async () => {
        const info = await broker.jsm.consumers.info(
          topo.consumers.scored.stream,
          topo.consumers.scored.durable,
        );
        return info.num_ack_pending === 1 && info.delivered.stream_seq === lastSeq;
      },
      { description: "the valid events acked" },
    );
  });

  it("a lead.scored that breaks its contract inside a batch is handed to `invalid` naming the field", async () => {
    const fixtures = Array.from({ length: 4 }, () => lead());
    const js = jetstream(broker.nc);
    await publishScored(fixtures.slice(0, 2));
    const badScore = lead();
    const badTenant = lead();
    await js.publish(
      subjects.leadScored(badScore.tenant, badScore.leadId),
      JSON.stringify({ ...scoredEvent(badScore), data: { ...scoredEvent(badScore).data, pred_prob: 1.5 } }),
    );
    await js.publish(
      subjects.leadScored(badTenant.tenant, badTenant.leadId),
      JSON.stringify({ ...scoredEvent(badTenant), tenant: "a.b" }),
    );
    await publishScored(fixtures.slice(2));
    const h = await handlerDeps();

    await h.handle(await pull(6));
    expect(h.invalid.map((i) => i.msg.subject)).toEqual([
      subjects.leadScored(badScore.tenant, badScore.leadId),
      subjects.leadScored(badTenant.tenant, badTenant.leadId),
    ]);
    expect(h.invalid[0]?.err.message).toMatch(/^lead\.scored\.v1: data\.pred_prob: /);
    expect(h.invalid[1]?.err.message).toMatch(/^lead\.scored\.v1: tenant: must be 1-64 characters/);
    expect([...(await timerSequences()).keys()].sort()).toEqual(timerSubjects(fixtures));
    expect(await readPlan(broker.nc, badScore)).toBeNull();
  });

  it("an invalid event in a backlog, through the consumer loop: terminated and counted, the rest scheduled", async () => {
    const fixtures = Array.from({ length: 40 }, () => lead());
    await publishScored(fixtures.slice(0, 20));
    const bad = lead();
    await jetstream(broker.nc).publish(subjects.leadScored(bad.tenant, bad.leadId), "not json");
    const lastSeq = await publishScored(fixtures.slice(20));
    const s = await runScheduler(broker.server.url, RULE);
    broker.cleanups.push(s.stop);
    await waitFor(() => consumerCaughtUp(broker.jsm, topo.consumers.scored, lastSeq), {
      description: "every lead.scored handled",
    });
    expect([...(await timerSequences()).keys()].sort()).toEqual(timerSubjects(fixtures));
    expect(await metricValue(s.registry, "scheduler_invalid_events_total", { consumer: "scored" })).toBe(1);
    expect(s.logsNamed("invalid_event_terminated")).toHaveLength(1);
    const info = await broker.jsm.consumers.info(topo.streams.leads.name, topo.consumers.scored.durable);
    expect(info.num_redelivered, "a terminated or acked event was redelivered").toBe(0);
  });

  it("two scheduler copies on the scored consumer: every lead planned and every timer stored once between them", async () => {
    const fixtures = Array.from({ length: 400 }, () => lead());
    const copies = await Promise.all([
      runScheduler(broker.server.url, RULE),
      runScheduler(broker.server.url, RULE),
    ]);
    for (const copy of copies) broker.cleanups.push(copy.stop);
    const lastSeq = await publishScored(fixtures);
    await waitFor(() => consumerCaughtUp(broker.jsm, topo.consumers.scored, lastSeq), {
      description: "every lead.scored handled",
      timeoutMs: 20_000,
    });
    expect([...(await timerSequences()).keys()].sort()).toEqual(timerSubjects(fixtures));
    const scheduled = await Promise.all(
      copies.map((c) => metricValue(c.registry, "followups_scheduled_total")),
    );
    expect(
      scheduled.reduce((a, b) => a + b, 0),
      `scheduled per copy: ${scheduled.join(", ")}`,
    ).toBe(800);
    const enqueued = copies.flatMap((c) => c.logsNamed("followups_enqueued").map((l) => l.lead_id));
    expect(enqueued.sort()).toEqual(fixtures.map((f) => f.leadId).sort());
    const kv = await new Kvm(broker.nc).open(topo.buckets.plans.bucket);
    expect((await kv.get(leadKey(fixtures[399]!)))?.revision).toBeGreaterThan(0);
  });
});
