import { describe, expect, it } from "vitest";
import {
  addToDoc,
  applyEvent,
  type CounterDoc,
  type Counters,
  contribution,
  emptyRecord,
  type LeadRecord,
  type ProjectionEvent,
} from "../src/projection.js";
import { sequenceReport, stepsReport } from "../src/report.js";

const DAY = 86_400_000;
const WINDOW = 14 * DAY;
const T0 = "2026-11-02T10:15:00.000Z";
const at = (ms: number) => new Date(Date.parse(T0) + ms).toISOString();

type Of<K extends ProjectionEvent["kind"]> = Extract<ProjectionEvent, { kind: K }>;

function plan(leadId: string, extra: { holdout?: boolean; variant?: string } = {}): Of<"plan"> {
  return {
    kind: "plan",
    tenant: "acme",
    lead_id: leadId,
    plan: {
      lead_id: leadId,
      tenant: "acme",
      lead_created_at: T0,
      pred_prob: 0.9,
      planned_at: T0,
      sequence: { name: "spring", revision: 3 },
      holdout: extra.holdout ?? false,
      steps: [
        {
          step: 1,
          delay_s: 60,
          due_at: at(60_000),
          state: "pending",
          channel: "sms",
          ...(extra.variant ? { variant: extra.variant } : {}),
        },
      ],
    },
  };
}
const scored = (leadId: string): ProjectionEvent => ({
  kind: "scored",
  tenant: "acme",
  lead_id: leadId,
  created_at: T0,
  model_version: "m1",
});
const delivered = (leadId: string, ms = 60_000): Of<"result"> => ({
  kind: "result",
  tenant: "acme",
  lead_id: leadId,
  step: 1,
  channel: "sms",
  result: "ok",
  at: at(ms),
});
const outcome = (leadId: string, kind: string, ms: number): ProjectionEvent => ({
  kind: "outcome",
  tenant: "acme",
  lead_id: leadId,
  outcome: kind,
  at: at(ms),
});

const fold = (events: ProjectionEvent[]): LeadRecord =>
  events.reduce(applyEvent, emptyRecord("acme", events[0]!.lead_id));

function docsOf(records: LeadRecord[]): Map<string, CounterDoc> {
  const counters: Counters = new Map();
  for (const r of records) contribution(r, WINDOW, counters);
  return new Map(
    [...counters]
      .filter(([key]) => key.startsWith("seq."))
      .map(([key, fields]) => [key.slice(key.lastIndexOf(".") + 1), addToDoc({}, fields)]),
  );
}

describe("applyEvent", () => {
  it("gives the same record whatever the order, and a repeated event changes nothing", () => {
    const events = [
      scored("l1"),
      plan("l1", { variant: "a" }),
      delivered("l1"),
      outcome("l1", "booked", DAY),
    ];
    const forward = fold(events);
    const backward = fold([...events].reverse());
    expect(backward).toEqual(forward);
    for (const e of events) expect(applyEvent(forward, e)).toBe(forward);
    expect(fold([...events, ...events])).toEqual(forward);
  });

  it("keeps the first booking and the last outcome", () => {
    const r = fold([
      plan("l1"),
      outcome("l1", "ghosted", DAY),
      outcome("l1", "booked", 2 * DAY),
      outcome("l1", "booked", DAY / 2),
    ]);
    expect(r.booked_at).toBe(at(DAY / 2));
    expect(r.last_outcome).toEqual({ kind: "booked", at: at(2 * DAY) });
  });
});

describe("contribution and the reports", () => {
  it("counts a lead once, by arm; a booking after the window is no conversion", () => {
    const records = [
      fold([plan("a1", { variant: "a" }), delivered("a1"), outcome("a1", "booked", DAY)]),
      fold([plan("a2", { variant: "a" }), delivered("a2"), outcome("a2", "booked", 15 * DAY)]),
      fold([plan("b1", { variant: "b" }), delivered("b1")]),
      fold([plan("h1", { holdout: true }), outcome("h1", "ghosted", DAY)]),
      fold([plan("h2", { holdout: true })]),
    ];
    const docs = docsOf(records);
    const report = sequenceReport(
      "spring",
      { since: "2026-11-01", until: "2026-11-30" },
      docs,
      WINDOW,
      new Date(at(2 * DAY)),
    );
    const a = report.variants.find((v) => v.variant === "a")!;
    const b = report.variants.find((v) => v.variant === "b")!;
    expect(a).toMatchObject({
      enrolled: 2,
      followups_delivered: 2,
      converted: 1,
      conversion_rate: 0.5,
      outcomes: { booked: 2 },
    });
    expect(b).toMatchObject({ enrolled: 1, converted: 0, inside_attribution_window: 1 });
    expect(report.holdout).toMatchObject({
      variant: null,
      enrolled: 2,
      converted: 0,
      inside_attribution_window: 1,
    });
    expect(a.vs_holdout?.difference).toBeCloseTo(0.5, 12);
    expect(a.vs_holdout?.p_value).toBeGreaterThan(0);
    // Once the window of the hour they were created in has passed, no lead is inside it.
    const later = sequenceReport(
      "spring",
      { since: "2026-11-01", until: "2026-11-30" },
      docs,
      WINDOW,
      new Date(at(15 * DAY)),
    );
    expect(later.variants.find((v) => v.variant === "b")!.inside_attribution_window).toBe(0);
    // Out of range: nothing.
    expect(
      sequenceReport("spring", { since: "2026-11-03", until: "2026-11-30" }, docs, WINDOW, new Date())
        .variants,
    ).toEqual([]);
  });

  it("the steps report counts delivered and converted-after by step, channel and variant", () => {
    const records = [
      fold([plan("a1", { variant: "a" }), delivered("a1"), outcome("a1", "booked", DAY)]),
      fold([plan("a2", { variant: "a" }), { ...delivered("a2"), result: "dead" }]),
      fold([plan("a3", { variant: "a" }), { ...delivered("a3"), result: "suppressed" }]),
    ];
    const counters: Counters = new Map();
    for (const r of records) contribution(r, WINDOW, counters);
    const stepsDocs = new Map(
      [...counters]
        .filter(([k]) => k.startsWith("steps."))
        .map(([k, f]) => [k.slice(k.lastIndexOf(".") + 1), addToDoc({}, f)]),
    );
    expect(stepsReport({ since: "2026-11-01", until: "2026-11-30" }, stepsDocs).steps).toEqual([
      {
        sequence: "spring",
        step: 1,
        channel: "sms",
        variant: "a",
        delivered: 1,
        failed: 1,
        suppressed: 1,
        converted_after: 1,
      },
    ]);
  });

  it("a lead not enrolled (its plan skipped it) counts for nothing", () => {
    const base = plan("s1");
    const skipped: Of<"plan"> = { ...base, plan: { ...base.plan, steps: [], skipped: "below_threshold" } };
    expect(contribution(fold([skipped, outcome("s1", "booked", DAY)]), WINDOW).size).toBe(0);
  });
});
