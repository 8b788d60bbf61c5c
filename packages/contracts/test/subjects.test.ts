import { describe, expect, it } from "vitest";
import {
  deadLetterMsgId,
  FOLLOWUP_KINDS,
  followupMsgId,
  idempotencyKey,
  leadKey,
  parseFollowupSubject,
  parseIdempotencyKey,
  parseLeadSubject,
  parseSubject,
  replayMsgId,
  resultMsgId,
  SubjectError,
  subjects,
  wildcards,
} from "../src/index.js";

const LEAD = "0192f5e4-7b3a-7cc0-9b1e-2f4d5a6b7c8d";

describe("subject builders and parsers", () => {
  it("build the subjects of the brief", () => {
    expect(subjects.leadScored("acme", LEAD)).toBe(`lead.scored.acme.${LEAD}`);
    expect(subjects.leadOutcome("acme", LEAD)).toBe(`lead.outcome.acme.${LEAD}`);
    expect(subjects.followupTimer("acme", LEAD, 1)).toBe(`followup.timer.acme.${LEAD}.1`);
    expect(subjects.followupFired("acme", LEAD, 2)).toBe(`followup.fired.acme.${LEAD}.2`);
    expect(subjects.followupDue("acme", LEAD, 3)).toBe(`followup.due.acme.${LEAD}.3`);
    expect(subjects.followupResult("acme", LEAD, 1)).toBe(`followup.result.acme.${LEAD}.1`);
    expect(subjects.followupDead("acme", LEAD, 1)).toBe(`followup.dead.acme.${LEAD}.1`);
    expect(subjects.followupsOfLead("timer", "acme", LEAD)).toBe(`followup.timer.acme.${LEAD}.>`);
    expect(subjects.followupsOfTenant("dead", "acme")).toBe("followup.dead.acme.>");
    expect(subjects.leadEvents("acme", LEAD)).toBe(`lead.*.acme.${LEAD}`);
  });

  it("round-trip every kind", () => {
    for (const kind of FOLLOWUP_KINDS) {
      const built = `followup.${kind}.t_1.${LEAD}.12`;
      expect(parseSubject(built)).toEqual({
        family: "followup",
        kind,
        tenant: "t_1",
        leadId: LEAD,
        step: 12,
      });
      expect(parseFollowupSubject(built, kind)).toEqual({ tenant: "t_1", leadId: LEAD, step: 12 });
    }
    expect(parseLeadSubject(subjects.leadScored("acme", "L-1"), "scored")).toEqual({
      tenant: "acme",
      leadId: "L-1",
    });
    expect(parseLeadSubject(subjects.leadOutcome("acme", "L-1"), "outcome")).toEqual({
      tenant: "acme",
      leadId: "L-1",
    });
  });

  it.each(["", "a.b", "a*", "a>", ">", "*", "a b", " a", "a\tb", "a\nb", "ä", "a/b", "a:b", "x".repeat(65)])(
    "refuse tenant or lead id %j",
    (bad) => {
      expect(() => subjects.leadScored(bad, LEAD)).toThrow(SubjectError);
      expect(() => subjects.followupDue("acme", bad, 1)).toThrow(SubjectError);
      expect(() => leadKey({ tenant: bad, leadId: LEAD })).toThrow(SubjectError);
    },
  );

  it.each([0, -1, 1.5, Number.NaN, 1001, "1" as unknown as number])("refuse step %j", (bad) => {
    expect(() => subjects.followupTimer("acme", LEAD, bad)).toThrow(/step must be an integer/);
  });

  it("names the field that is wrong", () => {
    try {
      subjects.followupDue("acme", "a.b", 1);
      expect.unreachable();
    } catch (err) {
      expect((err as SubjectError).field).toBe("lead_id");
      expect((err as Error).message).toContain('"a.b"');
    }
  });

  it.each([
    "lead.scored.acme",
    "lead.scored.acme.L.extra",
    "lead.unknown.acme.L",
    "followup.timer.acme.L",
    "followup.timer.acme.L.x",
    "followup.timer.acme.L.0",
    "followup.timer.acme.L.-1",
    "followup.bogus.acme.L.1",
    "followup.timer.*.L.1",
    "followup.timer.acme.>",
    "other.thing",
    "",
  ])("parseSubject refuses %j", (bad) => {
    expect(() => parseSubject(bad)).toThrow(SubjectError);
  });

  it("parsers check the kind", () => {
    expect(() => parseFollowupSubject(subjects.followupDue("acme", LEAD, 1), "timer")).toThrow(
      /followup.timer/,
    );
    expect(() => parseLeadSubject(subjects.leadScored("acme", LEAD), "outcome")).toThrow(/lead.outcome/);
  });

  it("wildcards cover what the builders make", () => {
    expect(subjects.followupTimer("a", "b", 1).startsWith(wildcards.followupTimer.slice(0, -1))).toBe(true);
    expect(subjects.leadScored("a", "b").startsWith(wildcards.leadScored.slice(0, -1))).toBe(true);
  });

  it("idempotency keys and message ids round-trip", () => {
    const ref = { tenant: "acme", leadId: LEAD, step: 2 };
    expect(idempotencyKey(ref)).toBe(`acme:${LEAD}:2`);
    expect(parseIdempotencyKey(idempotencyKey(ref))).toEqual(ref);
    expect(followupMsgId(ref)).toBe(`${LEAD}:2`);
    expect(resultMsgId(ref, 1, 3)).toBe(`${LEAD}:2:result:1:3`);
    expect(deadLetterMsgId(ref, 0)).toBe(`${LEAD}:2:dead:0`);
    expect(replayMsgId(ref, 2)).toBe(`${LEAD}:2:replay:2`);
    expect(() => resultMsgId({ leadId: "a.b", step: 1 }, 0, 1)).toThrow(/lead_id/);
    expect(leadKey(ref)).toBe(`acme.${LEAD}`);
    for (const bad of ["", "a:b", "a:b:c:d", "a.b:c:1", "a:b:0", "a:b:x", "a:b:1001"]) {
      expect(parseIdempotencyKey(bad)).toBeNull();
    }
  });
});
