import { describe, expect, it } from "vitest";
import {
  brierScore,
  calibrationDeciles,
  labelLeads,
  labelOf,
  promotionGuard,
  timeSplit,
} from "../scripts/outcomes.js";

const DAY = 86_400_000;
const H = 14 * DAY;
const NOW = new Date("2026-12-01T00:00:00.000Z");
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();
const after = (created: string, ms: number) => new Date(Date.parse(created) + ms).toISOString();

describe("labelOf: the attribution window H", () => {
  const old = { created_at: ago(30 * DAY) };
  it.each([
    ["booked within H", [{ outcome: "booked", recorded_at: after(old.created_at, 3 * DAY) }], 1],
    ["booked exactly at H", [{ outcome: "booked", recorded_at: after(old.created_at, H) }], 1],
    ["booked after H", [{ outcome: "booked", recorded_at: after(old.created_at, H + 1) }], 0],
    ["unqualified", [{ outcome: "unqualified", recorded_at: after(old.created_at, DAY) }], 0],
    ["ghosted", [{ outcome: "ghosted", recorded_at: after(old.created_at, DAY) }], 0],
    ["nurture", [{ outcome: "nurture", recorded_at: after(old.created_at, DAY) }], 0],
    ["no outcome after H", [], 0],
    [
      "ghosted, then booked within H",
      [
        { outcome: "ghosted", recorded_at: after(old.created_at, DAY) },
        { outcome: "booked", recorded_at: after(old.created_at, 2 * DAY) },
      ],
      1,
    ],
    ["spam", [{ outcome: "spam", recorded_at: after(old.created_at, DAY) }], "spam"],
    [
      "booked, then spam",
      [
        { outcome: "booked", recorded_at: after(old.created_at, DAY) },
        { outcome: "spam", recorded_at: after(old.created_at, 2 * DAY) },
      ],
      "spam",
    ],
  ] as const)("%s", (_what, outcomes, label) => {
    expect(labelOf(old, outcomes, NOW, H)).toBe(label);
  });

  it("a lead younger than H is unlabelled, even booked: the newest window must not over-count quick bookings", () => {
    const young = { created_at: ago(3 * DAY) };
    expect(labelOf(young, [{ outcome: "booked", recorded_at: after(young.created_at, DAY) }], NOW, H)).toBe(
      "unlabelled",
    );
    expect(
      labelOf(young, [{ outcome: "unqualified", recorded_at: after(young.created_at, DAY) }], NOW, H),
    ).toBe("unlabelled");
    expect(labelOf(young, [], NOW, H)).toBe("unlabelled");
  });

  it("labelLeads matches outcomes by tenant and lead, and counts each kind", () => {
    const lead = (tenant: string, id: string, age: number) => ({
      tenant,
      lead_id: id,
      created_at: ago(age),
      details: "x",
      hour: 1,
    });
    const leads = [
      lead("a", "1", 20 * DAY),
      lead("b", "1", 20 * DAY),
      lead("a", "2", 20 * DAY),
      lead("a", "3", DAY),
    ];
    const outcomes = [
      { tenant: "a", lead_id: "1", outcome: "booked", recorded_at: after(leads[0]!.created_at, DAY) },
      { tenant: "a", lead_id: "2", outcome: "spam", recorded_at: after(leads[2]!.created_at, DAY) },
    ];
    const { leads: labelled, counts } = labelLeads(leads, outcomes, NOW, H);
    expect(counts).toEqual({ positive: 1, negative: 1, spam: 1, unlabelled: 1 });
    expect(labelled.map((l) => l.converted).sort()).toEqual([0, 1]);
  });
});

describe("the split, the evaluation and the guard", () => {
  it("splits by time: the newest 20% are the test window, never shuffled", () => {
    const rows = Array.from({ length: 10 }, (_, i) => ({ created_at: ago((10 - i) * DAY), i })).reverse();
    const { train, test } = timeSplit(rows, 0.2);
    expect(test.map((r) => r.i)).toEqual([8, 9]);
    expect(train.map((r) => r.i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("Brier score and calibration deciles", () => {
    expect(brierScore([0.5, 0.5, 1, 0], [1, 0, 1, 0])).toBeCloseTo(0.125, 12);
    const p = Array.from({ length: 100 }, (_, i) => i / 100);
    const y = p.map((v) => (v >= 0.5 ? 1 : 0));
    const bins = calibrationDeciles(p, y);
    expect(bins).toHaveLength(10);
    expect(bins.every((b) => b.n === 10)).toBe(true);
    expect(bins[0]).toMatchObject({ decile: 1, observed_rate: 0, mean_predicted: 0.045 });
    expect(bins[9]).toMatchObject({ decile: 10, observed_rate: 1, mean_predicted: 0.945 });
  });

  it.each([
    [0.8, 0.7, true],
    [0.8, null, true],
    [0.695, 0.7, true],
    [0.689, 0.7, false],
    [0.64, null, false],
    [0.6, 0.5, false],
  ])("AUC %d against the current %s: promoted %s", (fresh, current, promoted) => {
    const decision = promotionGuard(fresh, current);
    expect(decision.promote).toBe(promoted);
    if (!promoted) expect(decision.reasons.join(" ")).toContain(fresh.toFixed(4));
  });
});
