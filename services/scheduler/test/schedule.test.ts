import { backoffDelayMs, timerTtlSeconds } from "@followup/service-kit";
import { describe, expect, it } from "vitest";
import { decideEligibility, HANDLER_RETRY, MAX_HOLD_MS, markerTiming, planSteps } from "../src/schedule.js";

describe("decideEligibility", () => {
  const rule = { enabled: true, topP: 0.7, delays: [1800, 7200] };

  it.each([
    { name: "above the threshold", rule, p: 0.91, expected: { eligible: true } },
    { name: "exactly at the threshold", rule, p: 0.7, expected: { eligible: true } },
    {
      name: "just below the threshold",
      rule,
      p: 0.6999,
      expected: { eligible: false, reason: "below_threshold" },
    },
    { name: "zero", rule, p: 0, expected: { eligible: false, reason: "below_threshold" } },
    {
      name: "a threshold of 0 takes every lead",
      rule: { ...rule, topP: 0 },
      p: 0,
      expected: { eligible: true },
    },
    {
      name: "a threshold of 1 takes only 1",
      rule: { ...rule, topP: 1 },
      p: 0.999,
      expected: { eligible: false, reason: "below_threshold" },
    },
    {
      name: "disabled, whatever the score",
      rule: { ...rule, enabled: false },
      p: 0.99,
      expected: { eligible: false, reason: "disabled" },
    },
    {
      name: "disabled wins over an empty schedule",
      rule: { enabled: false, topP: 0.7, delays: [] },
      p: 0.99,
      expected: { eligible: false, reason: "disabled" },
    },
    {
      name: "an empty schedule",
      rule: { ...rule, delays: [] },
      p: 0.99,
      expected: { eligible: false, reason: "empty_schedule" },
    },
    {
      name: "an empty schedule wins over a low score",
      rule: { ...rule, delays: [] },
      p: 0.1,
      expected: { eligible: false, reason: "empty_schedule" },
    },
    {
      name: "NaN never qualifies",
      rule,
      p: Number.NaN,
      expected: { eligible: false, reason: "below_threshold" },
    },
  ])("$name", ({ rule, p, expected }) => {
    expect(decideEligibility(rule, p)).toEqual(expected);
  });
});

describe("planSteps", () => {
  it("numbers steps from 1 in schedule order, each due at created_at + delay", () => {
    const created = new Date("2026-03-01T10:00:00.250Z");
    expect(planSteps(created, [1800, 7200, 45])).toEqual([
      { step: 1, delay_s: 1800, due_at: "2026-03-01T10:30:00.250Z", state: "pending" },
      { step: 2, delay_s: 7200, due_at: "2026-03-01T12:00:00.250Z", state: "pending" },
      { step: 3, delay_s: 45, due_at: "2026-03-01T10:00:45.250Z", state: "pending" },
    ]);
  });

  it("keeps fractional delays to the millisecond", () => {
    const created = new Date("2026-03-01T10:00:00.000Z");
    expect(planSteps(created, [2.5, 0.001])[0]?.due_at).toBe("2026-03-01T10:00:02.500Z");
    expect(planSteps(created, [0.001])[0]?.due_at).toBe("2026-03-01T10:00:00.001Z");
  });

  it("is absolute: the same lead planned later gets the same due times", () => {
    const created = new Date("2026-03-01T10:00:00.000Z");
    expect(planSteps(created, [60])).toEqual(planSteps(new Date(created), [60]));
  });

  it("plans nothing for an empty schedule", () => {
    expect(planSteps(new Date(), [])).toEqual([]);
  });
});

describe("timerTtlSeconds: max(1, floor((due_at - now) / 1 s))", () => {
  const now = 1_000_000;
  it.each([
    { left: 1800_000, ttl: 1800 },
    { left: 1800_999, ttl: 1800 },
    { left: 2_000, ttl: 2 },
    { left: 1_999, ttl: 1 },
    { left: 1_000, ttl: 1 },
    { left: 999, ttl: 1 },
    { left: 1, ttl: 1 },
    { left: 0, ttl: 1 },
    { left: -60_000, ttl: 1 },
  ])("$left ms before due_at -> $ttl s", ({ left, ttl }) => {
    expect(timerTtlSeconds(now + left, now)).toBe(ttl);
  });

  it("never lets the marker come after due_at when at least a second is left (the fraction is held instead)", () => {
    for (let left = 1_000; left < 10_000; left += 37) {
      const ttl = timerTtlSeconds(now + left, now);
      expect(ttl * 1000).toBeLessThanOrEqual(left);
      expect(left - ttl * 1000).toBeLessThan(1000);
    }
  });
});

describe("markerTiming", () => {
  const due = 5_000_000;
  it("publishes at or after due_at", () => {
    expect(markerTiming(due, due)).toEqual({ action: "publish" });
    expect(markerTiming(due, due + 1)).toEqual({ action: "publish" });
    expect(markerTiming(due, due + 3_600_000)).toEqual({ action: "publish" });
  });
  it("holds a marker that is early by up to MAX_HOLD_MS", () => {
    expect(markerTiming(due, due - 1)).toEqual({ action: "hold", ms: 1 });
    expect(markerTiming(due, due - 999)).toEqual({ action: "hold", ms: 999 });
    expect(markerTiming(due, due - MAX_HOLD_MS)).toEqual({ action: "hold", ms: MAX_HOLD_MS });
  });
  it("hands back a marker that is earlier than that, to come back at due_at", () => {
    expect(markerTiming(due, due - MAX_HOLD_MS - 1)).toEqual({ action: "retry_later", ms: MAX_HOLD_MS + 1 });
    expect(markerTiming(due, due - 60_000)).toEqual({ action: "retry_later", ms: 60_000 });
  });
});

describe("HANDLER_RETRY (the shared back-off, as the scheduler sets it)", () => {
  it("doubles from 500 ms per attempt and stops at the cap", () => {
    const top = () => 0.999_999;
    expect([1, 2, 3, 4, 7, 8, 50].map((n) => backoffDelayMs(n, HANDLER_RETRY, top))).toEqual([
      500, 1000, 2000, 4000, 30_000, 30_000, 30_000,
    ]);
  });
  it("takes off at most 20% as jitter", () => {
    expect(backoffDelayMs(1, HANDLER_RETRY, () => 0)).toBe(400);
    expect(backoffDelayMs(100, HANDLER_RETRY, () => 0)).toBe(30_000 * 0.8);
  });
  it("treats a delivery count below 1 as the first, and runs six attempts before a nak", () => {
    expect(backoffDelayMs(0, HANDLER_RETRY, () => 0.999_999)).toBe(500);
    expect(HANDLER_RETRY.attempts).toBe(6);
  });
});
