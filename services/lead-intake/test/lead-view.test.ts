import {
  type FollowupDead,
  type FollowupPlan,
  type FollowupResult,
  type HookReceipt,
  idempotencyKey,
  LeadView,
  makeEvent,
  type StoredLead,
} from "@followup/contracts";
import { describe, expect, it } from "vitest";
import { buildLeadView, followupStatus, type LeadSources, sortTimeline } from "../src/lead-view/view.js";

const T0 = Date.parse("2026-03-01T10:00:00.000Z");
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const tenant = "acme";
const leadId = "L1";

const lead: StoredLead = {
  lead_id: leadId,
  tenant,
  name: "Alex Rivera",
  phone: "+1-555-0199",
  details: "book now",
  enrichment: { intent: "lead_capture", sentiment: "neutral", urgency: "high", score: 0.8 },
  pred_prob: 0.86,
  model_version: "m1",
  created_at: at(0),
};

function plan(steps: FollowupPlan["steps"], extra: Partial<FollowupPlan> = {}): FollowupPlan {
  return {
    lead_id: leadId,
    tenant,
    lead_created_at: at(0),
    pred_prob: 0.86,
    planned_at: at(1),
    steps,
    ...extra,
  };
}

const step = (n: number, state: "pending" | "due" | "cancelled", delay = n * 60) => ({
  step: n,
  delay_s: delay,
  due_at: at(delay),
  state,
  ...(state === "due" ? { due_published_at: at(delay) } : {}),
});

function result(
  n: number,
  attempt: number,
  outcome: FollowupResult["data"]["result"],
  s: number,
  code: number | null,
) {
  return makeEvent("followup.result.v1", {
    source: "/dispatcher",
    subject: `${leadId}/${n}`,
    tenant,
    time: new Date(T0 + s * 1000),
    data: {
      lead_id: leadId,
      step: n,
      delay_s: n * 60,
      due_at: at(n * 60),
      idempotency_key: idempotencyKey({ tenant, leadId, step: n }),
      channel: "hook",
      attempt,
      result: outcome,
      status_code: code,
      ...(outcome === "ok" ? {} : { error: code === null ? "timeout" : `HTTP ${code}` }),
      duration_ms: 5,
    },
  }) as FollowupResult;
}

function deadLetter(n: number, s: number, attempts: number): FollowupDead {
  const due = {
    lead_id: leadId,
    step: n,
    delay_s: n * 60,
    due_at: at(n * 60),
    idempotency_key: idempotencyKey({ tenant, leadId, step: n }),
    channel: "hook",
    lead_created_at: at(0),
    pred_prob: 0.86,
    fired_at: at(n * 60),
    replays: 0,
  };
  return makeEvent("followup.dead.v1", {
    source: "/dispatcher",
    subject: `${leadId}/${n}`,
    tenant,
    time: new Date(T0 + s * 1000),
    data: {
      lead_id: leadId,
      step: n,
      delay_s: n * 60,
      due_at: at(n * 60),
      idempotency_key: due.idempotency_key,
      channel: "hook",
      attempts,
      reason: "exhausted",
      last_status_code: 503,
      last_error: "HTTP 503",
      due,
    },
  });
}

function receipt(n: number, s: number): HookReceipt {
  return {
    webhook_id: idempotencyKey({ tenant, leadId, step: n }),
    tenant,
    lead_id: leadId,
    step: n,
    strategy: `${n * 60}s`,
    attempt: 1,
    received_at: at(s),
    auth: "signature",
  };
}

function sources(extra: Partial<LeadSources> = {}): LeadSources {
  return {
    lead,
    plan: null,
    leadEvents: [],
    results: [],
    deadLetters: [],
    replays: [],
    receipts: [],
    markers: [],
    ...extra,
  };
}

describe("followupStatus", () => {
  const none = { delivered: false, dead: false, stopped: false };
  it.each([
    ["pending", none, "pending"],
    ["cancelled", none, "cancelled"],
    ["due", none, "due"],
    ["due", { ...none, delivered: true }, "delivered"],
    ["due", { ...none, dead: true }, "failed"],
    // Delivered after a replay of its dead letter: delivered wins.
    ["due", { ...none, delivered: true, dead: true }, "delivered"],
    ["pending", { ...none, stopped: true }, "cancelled"],
    ["due", { ...none, stopped: true }, "cancelled"],
    ["due", { ...none, dead: true, stopped: true }, "cancelled"],
    ["due", { ...none, delivered: true, stopped: true }, "delivered"],
    // The firing path does not write the plan: a pending step that fired is due, then delivered.
    ["pending", { ...none, fired: true }, "due"],
    ["pending", { ...none, fired: true, delivered: true }, "delivered"],
    ["pending", { ...none, fired: true, dead: true }, "failed"],
    ["pending", { ...none, fired: true, stopped: true }, "cancelled"],
    // An outcome after a delivery cancels the plan's steps; the delivered one stays delivered.
    ["cancelled", { ...none, fired: true, delivered: true }, "delivered"],
    ["cancelled", { ...none, fired: true }, "cancelled"],
  ] as const)("plan %s with %o is %s", (state, evidence, expected) => {
    expect(followupStatus(state, evidence)).toBe(expected);
  });
});

describe("buildLeadView", () => {
  it("before the scheduler saw the lead: qualified null, no follow-ups, a scored entry from the lead", () => {
    const view = LeadView.parse(buildLeadView(sources()));
    expect(view.qualified).toBeNull();
    expect(view.followups).toEqual([]);
    expect(view.timeline).toEqual([
      {
        at: at(0),
        event: "scored",
        detail: {
          pred_prob: 0.86,
          score: 0.8,
          intent: "lead_capture",
          sentiment: "neutral",
          urgency: "high",
          model_version: "m1",
        },
      },
    ]);
    expect(view.lead).not.toHaveProperty("tenant");
  });

  it("a lead below the threshold: qualified false, a scheduled entry saying why", () => {
    const view = buildLeadView(sources({ plan: plan([], { skipped: "below_threshold" }) }));
    expect(view.qualified).toBe(false);
    expect(view.timeline.map((e) => e.event)).toEqual(["scored", "scheduled"]);
    expect(view.timeline[1]!.detail).toEqual({ steps: 0, skipped: "below_threshold" });
  });

  it("derives each step's status, attempts and last error from the results and dead letters", () => {
    const view = buildLeadView(
      sources({
        plan: plan([step(1, "due"), step(2, "due"), step(3, "due"), step(4, "pending")]),
        results: [
          result(1, 2, "ok", 62, 200),
          result(1, 1, "error", 61, 500),
          result(2, 1, "error", 121, null),
          result(3, 1, "error", 181, 503),
          result(3, 2, "dead", 185, 503),
        ],
        deadLetters: [deadLetter(3, 185, 2)],
      }),
    );
    expect(view.qualified).toBe(true);
    expect(view.followups).toEqual([
      {
        step: 1,
        delay_s: 60,
        strategy: "60s",
        due_at: at(60),
        status: "delivered",
        attempts: 2,
        last_status_code: 200,
        delivered_at: at(62),
      },
      {
        step: 2,
        delay_s: 120,
        strategy: "120s",
        due_at: at(120),
        status: "due",
        attempts: 1,
        last_status_code: null,
        last_error: "timeout",
      },
      {
        step: 3,
        delay_s: 180,
        strategy: "180s",
        due_at: at(180),
        status: "failed",
        attempts: 2,
        last_status_code: 503,
        last_error: "HTTP 503",
      },
      { step: 4, delay_s: 240, strategy: "240s", due_at: at(240), status: "pending", attempts: 0 },
    ]);
  });

  it("a dead letter without its result still fails the step and appears on the timeline", () => {
    const view = buildLeadView(
      sources({ plan: plan([step(1, "due")]), deadLetters: [deadLetter(1, 70, 8)] }),
    );
    expect(view.followups[0]).toMatchObject({ status: "failed", attempts: 8, last_status_code: 503 });
    expect(view.timeline.at(-1)).toMatchObject({ event: "dead", step: 1, detail: { in_dead_letters: true } });
  });

  it("a suppressed step is suppressed, and a provider's report is not an attempt: it shows as the step's provider_status", () => {
    const sent = result(2, 1, "delivered", 200, null);
    const report = {
      ...sent,
      source: "/twilio-status",
      data: { ...sent.data, channel: "sms", provider: "twilio", provider_message_id: "SM1" },
    } as FollowupResult;
    const view = buildLeadView(
      sources({
        plan: plan([step(1, "due"), step(2, "due")]),
        results: [result(1, 1, "suppressed", 61, null), result(2, 1, "ok", 121, 201), report],
      }),
    );
    expect(view.followups.map((f) => [f.status, f.attempts, f.provider_status])).toEqual([
      ["suppressed", 1, undefined],
      ["delivered", 1, "delivered"],
    ]);
    expect(
      view.timeline.filter((e) => e.step !== undefined && e.event !== "due").map((e) => e.event),
    ).toEqual(["suppressed", "attempt_ok", "provider_report"]);
    expect(view.timeline.at(-1)?.detail).toMatchObject({
      status: "delivered",
      provider: "twilio",
      provider_message_id: "SM1",
    });
    // A suppressed step stays suppressed when the lead's follow-ups stop later.
    expect(followupStatus("due", { delivered: false, dead: false, stopped: true, suppressed: true })).toBe(
      "suppressed",
    );
  });

  it("a pending step on a channel whose address is suppressed (an inbound STOP) shows suppressed before it comes due", () => {
    const onChannel = (n: number, channel: string) => ({ ...step(n, "pending"), channel });
    const steps = [onChannel(1, "sms"), onChannel(2, "email"), onChannel(3, "sms")];
    const view = buildLeadView(
      sources({
        plan: plan(steps),
        markers: [{ step: 1, at: at(60) }],
        results: [result(1, 1, "ok", 61, 201)],
        suppressedChannels: new Set(["sms"]),
      }),
    );
    // Step 1 was sent before the STOP; step 3 will send nothing; the e-mail is not suppressed.
    expect(view.followups.map((f) => f.status)).toEqual(["delivered", "pending", "suppressed"]);
    const none = buildLeadView(sources({ plan: plan(steps), suppressedChannels: new Set() }));
    expect(none.followups.map((f) => f.status)).toEqual(["pending", "pending", "pending"]);
  });

  it("a replayed dead letter (gone from the DLQ) leaves the step due, its dead result on the timeline", () => {
    const view = buildLeadView(
      sources({ plan: plan([step(1, "due")]), results: [result(1, 3, "dead", 70, 500)] }),
    );
    expect(view.followups[0]!.status).toBe("due");
    const dead = view.timeline.find((e) => e.event === "dead");
    expect(dead?.detail).not.toHaveProperty("in_dead_letters");
  });

  it("a stopping outcome cancels every step not delivered; a non-stopping one cancels nothing", () => {
    const plans = plan([step(1, "due"), step(2, "pending")]);
    const booked = { outcome: "booked" as const, recorded_at: at(70) };
    const stopped = buildLeadView(
      sources({ lead: { ...lead, outcome: booked }, plan: plans, results: [result(1, 1, "ok", 61, 200)] }),
    );
    expect(stopped.followups.map((f) => f.status)).toEqual(["delivered", "cancelled"]);
    const nurture = buildLeadView(
      sources({ lead: { ...lead, outcome: { outcome: "nurture", recorded_at: at(70) } }, plan: plans }),
    );
    expect(nurture.followups.map((f) => f.status)).toEqual(["due", "pending"]);
    // The outcome on the lead shows on the timeline even before its event is read.
    expect(stopped.timeline.find((e) => e.event === "outcome")).toEqual({
      at: at(70),
      event: "outcome",
      detail: { outcome: "booked", stops_followups: true },
    });
  });

  it("a pending step whose timer left a marker is due from its due_at, never before; delivered once an attempt succeeded", () => {
    const plans = plan([step(1, "pending"), step(2, "pending"), step(3, "pending")]);
    const view = buildLeadView(
      sources({
        plan: plans,
        // Step 1's marker came 0.6 s early (held until due_at); step 2's came late; 3 has not fired.
        markers: [
          { step: 1, at: new Date(T0 + 60_000 - 600).toISOString() },
          { step: 2, at: at(121) },
        ],
        results: [result(1, 1, "ok", 61, 200)],
      }),
    );
    expect(view.followups.map((f) => f.status)).toEqual(["delivered", "due", "pending"]);
    expect(view.timeline.filter((e) => e.event === "due").map((e) => [e.step, e.at])).toEqual([
      [1, at(60)],
      [2, at(121)],
    ]);
    // A step whose marker was purged by an outcome after it was delivered: its result says it fired.
    const purged = buildLeadView(
      sources({
        lead: { ...lead, outcome: { outcome: "booked", recorded_at: at(70) } },
        plan: plan([step(1, "pending"), step(2, "cancelled")], {
          cancelled: { at: at(70), reason: "outcome:booked" },
        }),
        results: [result(1, 1, "ok", 61, 200)],
      }),
    );
    expect(purged.followups.map((f) => f.status)).toEqual(["delivered", "cancelled"]);
    expect(purged.timeline.filter((e) => e.event === "due").map((e) => [e.step, e.at])).toEqual([
      [1, at(60)],
    ]);
  });

  it("a cancelled plan cancels its steps and puts a cancelled entry on the timeline", () => {
    const view = buildLeadView(
      sources({
        plan: plan([step(1, "cancelled"), step(2, "cancelled")], {
          cancelled: { at: at(30), reason: "outcome:spam" },
        }),
      }),
    );
    expect(view.followups.map((f) => f.status)).toEqual(["cancelled", "cancelled"]);
    expect(view.timeline.at(-1)).toEqual({
      at: at(30),
      event: "cancelled",
      detail: { reason: "outcome:spam" },
    });
  });

  it("sorts the whole timeline by time, events of the same instant in the order things happen", () => {
    const outcome = makeEvent("lead.outcome.v1", {
      source: "/lead-intake",
      subject: leadId,
      tenant,
      data: { lead_id: leadId, outcome: "qualified", recorded_at: at(61), stops_followups: false },
    });
    const scored = makeEvent("lead.scored.v1", {
      source: "/lead-intake",
      subject: leadId,
      tenant,
      time: new Date(T0),
      data: {
        lead_id: leadId,
        created_at: at(0),
        pred_prob: 0.86,
        score: 0.8,
        intent: "lead_capture",
        sentiment: "neutral",
        urgency: "high",
        model_version: "m1",
      },
    });
    const view = buildLeadView(
      sources({
        lead: { ...lead, outcome: { outcome: "qualified", recorded_at: at(61) } },
        plan: plan([step(1, "due"), step(2, "due")]),
        leadEvents: [outcome, scored],
        results: [result(2, 1, "ok", 121, 200), result(1, 1, "ok", 60, 204)],
        receipts: [receipt(2, 120.5), receipt(1, 60)],
      }),
    );
    expect(view.timeline.map((e) => `${e.event}${e.step ? `:${e.step}` : ""}@${e.at.slice(14, 23)}`)).toEqual(
      [
        "scored@00:00.000",
        "scheduled@00:01.000",
        "due:1@01:00.000",
        "attempt_ok:1@01:00.000",
        "hook_received:1@01:00.000",
        "outcome@01:01.000",
        "due:2@02:00.000",
        "hook_received:2@02:00.500",
        "attempt_ok:2@02:01.000",
      ],
    );
    LeadView.parse(view);
  });

  it("sortTimeline keeps equal entries stable and orders steps", () => {
    const entries = [
      { at: at(5), event: "due", step: 2 },
      { at: at(5), event: "due", step: 1 },
      { at: at(1), event: "cancelled" },
    ];
    expect(sortTimeline(entries).map((e) => `${e.event}${e.step ?? ""}`)).toEqual([
      "cancelled",
      "due1",
      "due2",
    ]);
  });
});
