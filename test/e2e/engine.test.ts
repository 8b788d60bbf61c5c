// The whole engine end to end: a real nats-server, lead-intake, scheduler and dispatcher as
// child processes, follow-ups delivered to a recording hook. First the verification scenario of
// the system it replaces, then (concurrently, each with its own leads) delivery at the due time,
// cancellation by an outcome, dead letters and replay, and what `nats sub` shows; last, every
// event published during the run is checked against packages/contracts. Each service runs as its
// own broker identity against a server that refuses anonymous clients.

import { type LeadView, topology } from "@followup/contracts";
import { waitFor } from "@followup/nats-harness";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  contractViolations,
  countByKind,
  describeSummary,
  type Engine,
  type EventRecorder,
  type HookRecorder,
  headerOf,
  REFERENCE_LEADS,
  type RecordedMessage,
  recordEvents,
  startEngine,
  storedRecordProblems,
} from "../support/index.js";

/** Lateness allowed on a loaded 2-core machine; never early is strict. */
const LATE_MS = 2_000;
const DELAYS_S = [2, 4];

let engine: Engine;
let hook: HookRecorder;
let events: EventRecorder;
/** Hook receive time minus due_at of every follow-up delivered on its first call, printed at the end. */
const lateness: number[] = [];

beforeAll(async () => {
  engine = await startEngine({ schedules: DELAYS_S.map((d) => `${d}s`).join(",") });
  hook = engine.hook!;
  events = await recordEvents(engine.natsUrl, undefined, engine.as("tail"));
}, 90_000);

afterAll(async () => {
  if (lateness.length > 0)
    console.info(describeSummary("e2e delivery lateness (hook receive - due_at)", lateness));
  await events?.stop();
  await engine?.stop();
});

describe("the engine under its broker identities", () => {
  it("refuses an anonymous client and runs each service as its own identity, checking the topology only", async () => {
    await expect(connect({ servers: engine.natsUrl, maxReconnectAttempts: 0 })).rejects.toThrow(/authoriz/i);
    for (const service of engine.all()) {
      expect(service.env.NATS_USER, service.label).toBe(service.service);
      expect(service.env.NATS_INBOX_PREFIX, service.label).toBe(`_INBOX.${service.service}`);
      expect(service.env.NATS_PROVISION, service.label).toBe("false");
    }
  });
});

const scheduler = () => engine.services.scheduler[0]!;
const dispatcher = () => engine.services.dispatcher[0]!;

function leadWhere(
  leadId: string,
  ready: (view: LeadView) => boolean,
  description: string,
  timeoutMs = 15_000,
) {
  return engine.api.leadWhere(leadId, ready, description, timeoutMs);
}

/** The webhook-id (idempotency key) of a follow-up of tenant acme. */
const webhookId = (leadId: string, step: number) => `acme:${leadId}:${step}`;

describe("the engine end to end", () => {
  it("answers the verification scenario of the system it replaces", async () => {
    const queue = await engine.api.queueStatus();
    expect(queue).toMatchObject({
      enabled: true,
      queue: "followups",
      jobs: { queued: 0, scheduled: 0, dead: 0 },
    });
    const scheduledBefore = (await scheduler().metrics()).value("followups_scheduled_total");

    const high = await engine.api.postLead(REFERENCE_LEADS.high);
    expect(high.pred_prob).toBeGreaterThanOrEqual(0.7);
    // Both timers (or the first one's expiry marker, held until its due time) stay in
    // FOLLOWUP_TIMERS until the first follow-up is published: at least 2 s after the lead.
    const risen = await waitFor(
      async () => {
        const status = await engine.api.queueStatus();
        return status.jobs.scheduled >= 2 && status;
      },
      { description: "the queue status to count the high lead's 2 timers as scheduled", timeoutMs: 10_000 },
    );
    expect(risen.jobs.scheduled).toBe(2);
    expect((await scheduler().metrics()).value("followups_scheduled_total")).toBe(scheduledBefore + 2);

    const low = await engine.api.postLead(REFERENCE_LEADS.low);
    expect(low.pred_prob).toBeLessThan(0.7);
    const lowView = await leadWhere(
      low.lead_id,
      (v) => v.qualified !== null,
      "the scheduler to plan the low lead",
    );
    expect(lowView.qualified).toBe(false);
    expect(lowView.followups).toEqual([]);
    expect(lowView.timeline.map((e) => [e.event, e.detail?.skipped])).toEqual([
      ["scored", undefined],
      ["scheduled", "below_threshold"],
    ]);
    expect(
      (await scheduler().metrics()).value("followups_skipped_total", { reason: "below_threshold" }),
    ).toBe(1);

    // By the time the high lead's first follow-up is delivered, the low one has had every chance.
    await waitFor(() => hook.delivered.has(webhookId(high.lead_id, 1)), {
      description: "the high lead's first follow-up at the hook",
      timeoutMs: 2_000 + LATE_MS + 2_000,
    });
    expect(events.forLead(low.lead_id).map((m) => m.subject)).toEqual([`lead.scored.acme.${low.lead_id}`]);
    expect(hook.calls.filter((c) => c.body?.lead_id === low.lead_id)).toEqual([]);
  }, 30_000);

  describe.concurrent("each with its own leads", () => {
    it("delivers each follow-up at its due time, never early, signed, with the payload of the system it replaces; counts it; the lead's timeline shows it all", async () => {
      const okBefore = (await dispatcher().metrics()).value("followup_jobs_total", { result: "ok" });
      const { lead_id: leadId } = await engine.api.postLead(REFERENCE_LEADS.high);
      await waitFor(() => hook.deliveredFor(leadId).length === 2, {
        description: "both follow-ups of the lead at the hook",
        timeoutMs: 4_000 + LATE_MS + 3_000,
      });
      const view = await leadWhere(
        leadId,
        (v) => v.followups.every((f) => f.status === "delivered"),
        "the lead view to show both follow-ups delivered",
      );
      const createdAt = Date.parse(view.lead.created_at);

      for (const [i, call] of hook.deliveredFor(leadId).entries()) {
        const step = i + 1;
        const delayS = DELAYS_S[i]!;
        const dueAt = createdAt + delayS * 1000;
        expect(call.verified, "signature").toBe(true);
        expect(call.webhookId).toBe(webhookId(leadId, step));
        expect(call.headers["content-type"]).toBe("application/json");
        expect(call.payloadValid).toBe(true);
        expect(call.body).toEqual({
          lead_id: leadId,
          strategy: `${delayS}s`,
          message: `Auto follow-up at +${delayS}s`,
          ts: expect.any(String),
          tenant: "acme",
          step,
          due_at: new Date(dueAt).toISOString(),
          attempt: 1,
        });
        expect(Date.parse(call.body!.ts)).toBeGreaterThanOrEqual(dueAt);
        expect(call.receivedAt, `step ${step} never early`).toBeGreaterThanOrEqual(dueAt);
        expect(call.receivedAt - dueAt, `step ${step} late`).toBeLessThan(LATE_MS);
      }
      expect(hook.callsFor(webhookId(leadId, 1))).toHaveLength(1);
      expect(hook.callsFor(webhookId(leadId, 2))).toHaveLength(1);
      expect(
        (await dispatcher().metrics()).value("followup_jobs_total", { result: "ok" }),
      ).toBeGreaterThanOrEqual(okBefore + 2);

      expect(view.qualified).toBe(true);
      expect(view.followups).toEqual(
        DELAYS_S.map((delayS, i) => ({
          step: i + 1,
          delay_s: delayS,
          strategy: `${delayS}s`,
          due_at: new Date(createdAt + delayS * 1000).toISOString(),
          status: "delivered",
          attempts: 1,
          last_status_code: 200,
          delivered_at: expect.any(String),
        })),
      );
      expect(view.timeline.map((e) => [e.event, e.step])).toEqual([
        ["scored", undefined],
        ["scheduled", undefined],
        ["due", 1],
        ["attempt_ok", 1],
        ["due", 2],
        ["attempt_ok", 2],
      ]);
      const times = view.timeline.map((e) => Date.parse(e.at));
      expect(times).toEqual([...times].sort((a, b) => a - b));
      for (const entry of view.timeline.filter((e) => e.event === "due")) {
        expect(Date.parse(entry.at), `due ${entry.step} published before due_at`).toBeGreaterThanOrEqual(
          Date.parse(String(entry.detail?.due_at)),
        );
      }
    }, 30_000);

    it("an outcome booked after the first follow-up cancels the second", async () => {
      const { lead_id: leadId } = await engine.api.postLead(REFERENCE_LEADS.high);
      await waitFor(() => hook.delivered.has(webhookId(leadId, 1)), {
        description: "the first follow-up at the hook",
        timeoutMs: 2_000 + LATE_MS + 3_000,
      });
      // After the first one's result is stored (just after the hook answered): on a busy machine
      // an outcome sent when the call arrives can come before it.
      await leadWhere(leadId, (v) => v.followups[0]?.status === "delivered", "the first follow-up delivered");
      const outcome = await engine.api.recordOutcome(leadId, "booked", "called back, booked for Tuesday");
      expect(outcome.stops_followups).toBe(true);

      const view = await leadWhere(
        leadId,
        (v) => v.followups[1]?.status === "cancelled" && v.timeline.some((e) => e.event === "cancelled"),
        "the second follow-up to show cancelled",
      );
      expect(view.followups.map((f) => f.status)).toEqual(["delivered", "cancelled"]);
      expect(view.lead.outcome?.outcome).toBe("booked");
      expect(view.timeline.map((e) => e.event)).toEqual([
        "scored",
        "scheduled",
        "due",
        "attempt_ok",
        "outcome",
        "cancelled",
      ]);

      // Past the second due time (and generous lateness): nothing came, nothing fired.
      const secondDueAt = Date.parse(view.followups[1]!.due_at);
      await waitFor(() => Date.now() > secondDueAt + LATE_MS, {
        description: "the second due time to pass",
        timeoutMs: 8_000,
      });
      expect(hook.callsFor(webhookId(leadId, 2))).toEqual([]);
      const step2 = events.forLead(leadId).filter((m) => m.subject.endsWith(".2"));
      expect(step2.map((m) => m.subject.split(".").slice(0, 2).join("."))).toEqual([
        "followup.timer",
        "followup.fired",
      ]);
      expect(headerOf(step2[1]!, "Nats-Marker-Reason")).toBeUndefined();
      expect(
        (await scheduler().metrics()).value("followups_cancelled_total", { stage: "pending" }),
      ).toBeGreaterThanOrEqual(1);
    }, 30_000);

    it("dead-letters a follow-up the hook refuses for good, retries one it fails once, and replays the dead letter", async () => {
      const { lead_id: leadId } = await engine.api.postLead(REFERENCE_LEADS.high);
      let accept = false;
      const failedOnce = new Set<number>();
      hook.respond((call) => {
        if (call.body?.lead_id !== leadId) return undefined;
        if (call.body.step === 1 && !accept) return { status: 410, body: "gone" };
        if (call.body.step === 2 && !failedOnce.has(2)) {
          failedOnce.add(2);
          return { status: 503 };
        }
        return undefined;
      });

      const failed = await leadWhere(
        leadId,
        (v) => v.followups[0]?.status === "failed" && v.followups[1]?.status === "delivered",
        "step 1 dead-lettered and step 2 delivered after one retry",
      );
      expect(failed.followups.map((f) => [f.status, f.attempts, f.last_status_code])).toEqual([
        ["failed", 1, 410],
        ["delivered", 2, 200],
      ]);
      expect(failed.timeline.map((e) => [e.event, e.step])).toEqual([
        ["scored", undefined],
        ["scheduled", undefined],
        ["due", 1],
        ["dead", 1],
        ["due", 2],
        ["attempt_error", 2],
        ["attempt_ok", 2],
      ]);
      const letters = await engine.api.deadLetters({ lead_id: leadId });
      expect(letters.count).toBe(1);
      expect(letters.dead_letters[0]?.event).toMatchObject({
        type: "followup.dead.v1",
        data: { step: 1, reason: "permanent", last_status_code: 410, attempts: 1 },
      });
      expect((await engine.api.queueStatus()).jobs.dead).toBeGreaterThanOrEqual(1);

      accept = true;
      const replay = await engine.api.replayDeadLetters({ lead_id: leadId });
      expect(replay).toMatchObject({ replayed: 1, more: false, items: [{ lead_id: leadId, step: 1 }] });
      const replayed = await leadWhere(
        leadId,
        (v) => v.followups[0]?.status === "delivered",
        "the replayed follow-up to be delivered",
      );
      expect(replayed.followups[0]?.status).toBe("delivered");
      // Attempts are numbered across the replay: the hook, the lead view and the timeline agree.
      const calls = hook.callsFor(webhookId(leadId, 1));
      expect(calls.map((c) => [c.status, c.body?.attempt])).toEqual([
        [410, 1],
        [200, 2],
      ]);
      expect(replayed.followups[0]?.attempts).toBe(2);
      const stepOne = replayed.timeline.filter((e) => e.step === 1);
      expect(stepOne.map((e) => [e.event, e.detail?.attempt])).toEqual([
        ["due", undefined],
        ["dead", 1],
        ["replayed", undefined],
        ["attempt_ok", 2],
      ]);
      expect(stepOne.find((e) => e.event === "replayed")?.detail).toMatchObject({
        replays: 1,
        attempts_before: 1,
      });
      expect((await engine.api.deadLetters({ lead_id: leadId })).count).toBe(0);
      const metrics = await dispatcher().metrics();
      expect(metrics.value("followup_dead_letters_total", { reason: "permanent" })).toBe(1);
      expect(metrics.value("followup_retries_total", { reason: "status_5xx" })).toBe(1);
    }, 30_000);

    it("shows a lead's lifecycle in order on a plain core-NATS subscription (what `nats sub` shows)", async () => {
      const { lead_id: leadId } = await engine.api.postLead(REFERENCE_LEADS.high);
      const seen = await events.waitFor(
        () => {
          const mine = events.forLead(leadId);
          return mine.filter((m) => m.subject.startsWith("followup.result.")).length >= 2 && mine;
        },
        "both results of the lead on followup.result.>",
        4_000 + LATE_MS + 3_000,
      );
      const label = (m: RecordedMessage) => {
        const kind = m.subject.split(".")[1]!;
        const step = m.subject.split(".")[4];
        const marker = kind === "fired" && headerOf(m, "Nats-Marker-Reason") ? "(expired)" : "";
        return `${kind}${marker}${step ? ` ${step}` : ""}`;
      };
      for (const step of [1, 2]) {
        const ofStep = seen.filter(
          (m) => !m.subject.startsWith("followup.") || m.subject.endsWith(`.${step}`),
        );
        // The marker is delivered where it is consumed: no followup.due hop between fired and result.
        expect(ofStep.map(label), `step ${step}`).toEqual([
          "scored",
          `timer ${step}`,
          `fired ${step}`,
          `fired(expired) ${step}`,
          `result ${step}`,
        ]);
      }
      const results = seen.filter((m) => m.subject.startsWith("followup.result."));
      expect(results.map((m) => JSON.parse(m.text).data.result)).toEqual(["ok", "ok"]);
    }, 30_000);
  });

  it("published nothing its contract does not allow, stored only valid records, and counted every delivery", async () => {
    const counts = countByKind(events.messages);
    for (const kind of [
      "lead.scored",
      "lead.outcome",
      "followup.timer",
      "followup.fired",
      "followup.due",
      "followup.result",
      "followup.dead",
    ]) {
      expect(counts[kind] ?? 0, `${kind} events captured`).toBeGreaterThan(0);
    }
    expect(contractViolations(events.messages)).toEqual([]);

    const nc = await connect({ servers: engine.natsUrl, ...engine.as() });
    try {
      const records = await storedRecordProblems(nc, topology());
      expect(records.problems).toEqual([]);
      expect(records.checked).toBeGreaterThanOrEqual(6);
    } finally {
      await nc.close();
    }

    const metrics = await dispatcher().metrics();
    const answered = (ok: boolean) =>
      hook.calls.filter((c) => c.verified && (c.status >= 200 && c.status < 300) === ok);
    expect(metrics.value("followup_jobs_total", { result: "ok" })).toBe(answered(true).length);
    expect(
      metrics.value("followup_jobs_total", { result: "error" }) +
        metrics.value("followup_jobs_total", { result: "dead" }),
    ).toBe(answered(false).length);
    expect(hook.duplicates).toBe(0);
    expect(hook.unverified).toBe(0);

    // Every follow-up delivered on its first call, of every test: never early, not much late.
    for (const call of hook.delivered.values()) {
      if (hook.callsFor(call.webhookId).length !== 1) continue;
      const lateMs = call.receivedAt - Date.parse(call.body!.due_at!);
      expect(lateMs, `${call.webhookId} early`).toBeGreaterThanOrEqual(0);
      expect(lateMs, `${call.webhookId} late`).toBeLessThan(LATE_MS);
      lateness.push(lateMs);
    }
    console.info(`e2e events captured by kind: ${JSON.stringify(counts)}`);
  });
});
