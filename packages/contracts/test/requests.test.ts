import { describe, expect, it } from "vitest";
import {
  describeIssues,
  LeadRequest,
  OutcomeRequest,
  STOPPING_OUTCOMES,
  stopsFollowups,
} from "../src/index.js";

const good = { name: "Alex Rivera", phone: "+1-555-0199", details: "Need to book." };

function failingPaths(input: unknown): string[] {
  const result = LeadRequest.safeParse(input);
  return result.success ? [] : describeIssues(result.error).map((i) => i.path);
}

describe("LeadRequest", () => {
  it("accepts the reference leads of the system it replaces", () => {
    expect(LeadRequest.parse(good)).toEqual(good);
    expect(
      LeadRequest.parse({ name: "Bob Smith", phone: "+1-555-0100", details: "Just browsing." }).name,
    ).toBe("Bob Smith");
  });

  it("defaults details to empty and keeps optional e-mail and time zone", () => {
    const parsed = LeadRequest.parse({
      name: "Al",
      phone: "5550100",
      email: "al@example.com",
      timezone: "Europe/Paris",
    });
    expect(parsed).toEqual({
      name: "Al",
      phone: "5550100",
      details: "",
      email: "al@example.com",
      timezone: "Europe/Paris",
    });
  });

  it("drops unknown fields instead of storing them", () => {
    const parsed = LeadRequest.parse({ ...good, admin: true, __proto__: { polluted: 1 } });
    expect(Object.keys(parsed).sort()).toEqual(["details", "name", "phone"]);
  });

  it.each([
    [{ ...good, name: "A" }, ["name"]],
    [{ ...good, name: " A " }, ["name"]],
    [{ ...good, phone: "12345" }, ["phone"]],
    [{ ...good, phone: "call me maybe" }, ["phone"]],
    [{ ...good, details: "x".repeat(2001) }, ["details"]],
    [{ ...good, email: "not-an-email" }, ["email"]],
    [{ ...good, timezone: "Mars/Olympus" }, ["timezone"]],
    [{ ...good, name: 42 }, ["name"]],
    [{ phone: good.phone }, ["name"]],
    [{}, ["name", "phone"]],
    [[], ["(root)"]],
    [null, ["(root)"]],
    [{ ...good, name: { first: "Alex" } }, ["name"]],
  ])("%j fails on %j", (input, paths) => {
    expect(failingPaths(input).sort()).toEqual([...paths].sort());
  });

  it("accepts details of exactly 2000 characters", () => {
    expect(failingPaths({ ...good, details: "x".repeat(2000) })).toEqual([]);
  });
});

describe("OutcomeRequest", () => {
  it("accepts every outcome of the enum and refuses others", () => {
    for (const outcome of ["booked", "ghosted", "qualified", "unqualified", "nurture", "spam"]) {
      expect(OutcomeRequest.safeParse({ outcome }).success).toBe(true);
    }
    expect(OutcomeRequest.safeParse({ outcome: "won" }).success).toBe(false);
    expect(OutcomeRequest.safeParse({}).success).toBe(false);
  });

  it("booked, unqualified and spam stop follow-ups; the others do not", () => {
    expect([...STOPPING_OUTCOMES].sort()).toEqual(["booked", "spam", "unqualified"]);
    expect(stopsFollowups("booked")).toBe(true);
    expect(stopsFollowups("nurture")).toBe(false);
    expect(stopsFollowups("ghosted")).toBe(false);
  });
});
