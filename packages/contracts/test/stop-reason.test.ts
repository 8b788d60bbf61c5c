import { describe, expect, it } from "vitest";
import { LeadStopState, OUTCOMES, type Outcome, STOP_REASONS, stopReason } from "../src/index.js";

const at = "2026-03-01T12:00:00.000Z";
const withOutcome = (outcome: Outcome) => ({ outcome: { outcome, recorded_at: at } });

describe("stopReason: does this lead's follow-ups stop?", () => {
  it.each([
    ["booked", "outcome"],
    ["unqualified", "outcome"],
    ["spam", "outcome"],
    ["ghosted", null],
    ["qualified", null],
    ["nurture", null],
  ] as const)("an outcome %s: %j", (outcome, expected) => {
    expect(stopReason(withOutcome(outcome))).toBe(expected);
  });

  it("covers every outcome in the table above", () => {
    expect([...OUTCOMES].sort()).toEqual([
      "booked",
      "ghosted",
      "nurture",
      "qualified",
      "spam",
      "unqualified",
    ]);
  });

  it("stops a cancelled lead, and names the outcome first when both are set", () => {
    expect(stopReason({ cancelled_at: at })).toBe("cancelled");
    expect(stopReason({ ...withOutcome("nurture"), cancelled_at: at })).toBe("cancelled");
    expect(stopReason({ ...withOutcome("booked"), cancelled_at: at })).toBe("outcome");
  });

  it("goes ahead for a lead with neither, and stops one that is not stored", () => {
    expect(stopReason({})).toBeNull();
    expect(stopReason(null)).toBe("lead_missing");
    expect(STOP_REASONS).toEqual(["outcome", "cancelled", "lead_missing"]);
  });

  it("reads the stop state of a stored lead without the rest of it", () => {
    const parsed = LeadStopState.parse({ name: 42, ...withOutcome("spam") });
    expect(stopReason(parsed)).toBe("outcome");
    expect(LeadStopState.safeParse({ outcome: { outcome: "won" } }).success).toBe(false);
  });
});
