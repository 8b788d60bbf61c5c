import { describe, expect, it } from "vitest";
import {
  BUILT_IN_SEQUENCE,
  builtInSequence,
  chooseSequence,
  describeIssues,
  KNOWN_CHANNELS,
  MAX_SEQUENCE_STEPS,
  matchSequence,
  SEQUENCE_EXAMPLE,
  Sequence,
  type SequenceLead,
  SequenceName,
  SequenceRecord,
  sequenceDelays,
  sequenceMatches,
} from "../src/index.js";

/** The example of the issue. */
const example = {
  enabled: true,
  priority: 10,
  match: { min_pred_prob: 0.7, intents: ["lead_capture"], urgency: ["high"] },
  steps: [
    { delay: "30m", channel: "sms", template: "first-touch" },
    { delay: "1d", channel: "email", template: "recap" },
  ],
  send_window: {
    timezone: "America/New_York",
    days: ["mon", "tue", "wed", "thu", "fri"],
    start: "09:00",
    end: "18:00",
  },
  stop_on: ["booked", "unqualified", "spam"],
};

function issues(input: unknown): { path: string; message: string }[] {
  const result = Sequence.safeParse(input);
  return result.success ? [] : describeIssues(result.error);
}

describe("Sequence validation", () => {
  it("documents the issue's example (SEQUENCE_EXAMPLE is it, letter for letter)", () => {
    expect(SEQUENCE_EXAMPLE).toEqual(example);
  });

  it("accepts the issue's example unchanged", () => {
    expect(Sequence.parse(example)).toEqual(example);
    expect(sequenceDelays(Sequence.parse(example))).toEqual([1800, 86_400]);
  });

  it("fills in what may be left out: enabled, priority 0, match any, no window, the stopping outcomes", () => {
    expect(Sequence.parse({ steps: [{ delay: "2h", channel: "hook" }] })).toEqual({
      enabled: true,
      priority: 0,
      match: {},
      steps: [{ delay: "2h", channel: "hook" }],
      stop_on: ["booked", "unqualified", "spam"],
    });
  });

  it("names the known channels", () => {
    expect([...KNOWN_CHANNELS]).toEqual(["hook", "sms", "email", "slack"]);
  });

  const step = { delay: "30m", channel: "sms" };
  it.each([
    [
      "an unparseable delay",
      { steps: [step, { ...step, delay: "30x" }] },
      "steps.1.delay",
      '"30x": expected a number',
    ],
    ["a zero delay", { steps: [{ ...step, delay: "0m" }] }, "steps.0.delay", "greater than zero"],
    ["a delay over a year", { steps: [{ ...step, delay: "366d" }] }, "steps.0.delay", "at most 365 days"],
    ["a delay that is not a string", { steps: [{ ...step, delay: 30 }] }, "steps.0.delay", "such as 30m"],
    [
      "a delay shorter than the one before",
      { steps: [{ ...step, delay: "1d" }, step] },
      "steps.1.delay",
      "must not be shorter than step 1's delay (1d)",
    ],
    [
      "more than 20 steps",
      { steps: Array.from({ length: MAX_SEQUENCE_STEPS + 1 }, (_, i) => ({ ...step, delay: `${i + 1}h` })) },
      "steps",
      "at most 20 steps",
    ],
    ["no steps", { steps: [] }, "steps", "at least one step"],
    ["no steps field", {}, "steps", "expected array"],
    [
      "an unregistered channel",
      { steps: [{ ...step, channel: "fax" }] },
      "steps.0.channel",
      "hook, sms, email, slack",
    ],
    [
      "a template of the wrong form",
      { steps: [{ ...step, template: "First Touch" }] },
      "steps.0.template",
      "a-z",
    ],
    [
      "a window whose end is not after its start",
      { steps: [step], send_window: { start: "18:00", end: "09:00" } },
      "send_window.end",
      "must be after start (18:00)",
    ],
    [
      "an unknown time zone",
      { steps: [step], send_window: { timezone: "Mars/Olympus", start: "09:00", end: "18:00" } },
      "send_window.timezone",
      "IANA time zone",
    ],
    [
      "an unknown weekday",
      { steps: [step], send_window: { days: ["mon", "caturday"], start: "09:00", end: "18:00" } },
      "send_window.days.1",
      "mon, tue, wed, thu, fri, sat, sun",
    ],
    [
      "an unknown outcome",
      { steps: [step], stop_on: ["booked", "won"] },
      "stop_on.1",
      "booked, ghosted, qualified",
    ],
    [
      "a probability above 1",
      { steps: [step], match: { min_pred_prob: 1.5 } },
      "match.min_pred_prob",
      "0 to 1",
    ],
    [
      "an unknown intent",
      { steps: [step], match: { intents: ["sales"] } },
      "match.intents.0",
      "lead_capture",
    ],
    ["an unknown urgency", { steps: [step], match: { urgency: ["low"] } }, "match.urgency.0", "high, normal"],
    [
      "an unknown sentiment",
      { steps: [step], match: { sentiment: ["angry"] } },
      "match.sentiment.0",
      "positive",
    ],
    ["an empty criterion list", { steps: [step], match: { intents: [] } }, "match.intents", "leave it out"],
    [
      "a misspelt criterion",
      { steps: [step], match: { min_pred_probability: 0.7 } },
      "match",
      "min_pred_probability",
    ],
    ["a fractional priority", { steps: [step], priority: 1.5 }, "priority", "integer from 0 to 1000"],
    ["a negative priority", { steps: [step], priority: -1 }, "priority", "integer from 0 to 1000"],
    ["an enabled flag that is not boolean", { steps: [step], enabled: "yes" }, "enabled", "true or false"],
  ])("%s fails on %s", (_what, input, path, message) => {
    const found = issues(input);
    expect(found.map((i) => i.path)).toEqual([path]);
    expect(found[0]?.message).toContain(message);
  });

  it("names every bad field at once", () => {
    const found = issues({
      ...example,
      steps: [{ delay: "soon", channel: "fax" }],
      send_window: { ...example.send_window, timezone: "Nowhere/Land", days: ["fri", "someday"] },
      stop_on: ["maybe"],
    });
    expect(found.map((i) => i.path).sort()).toEqual([
      "send_window.days.1",
      "send_window.timezone",
      "steps.0.channel",
      "steps.0.delay",
      "stop_on.0",
    ]);
  });

  it("allows equal delays (two channels at once) and exactly 20 steps", () => {
    const twenty = Array.from({ length: MAX_SEQUENCE_STEPS }, (_, i) => ({ ...step, delay: `${i + 1}h` }));
    expect(issues({ steps: twenty })).toEqual([]);
    expect(issues({ steps: [step, { ...step, channel: "email" }] })).toEqual([]);
  });
});

describe("SequenceName and SequenceRecord", () => {
  it.each([
    ["welcome", true],
    ["a".repeat(64), true],
    ["re-engage_2", true],
    ["", false],
    ["a".repeat(65), false],
    ["Welcome", false],
    ["has.dot", false],
    ["has space", false],
  ])("%j valid: %s", (name, valid) => {
    expect(SequenceName.safeParse(name).success).toBe(valid);
  });

  it("a record is the sequence plus its tenant, name and update time", () => {
    const record = SequenceRecord.parse({
      ...example,
      tenant: "acme",
      name: "hot-leads",
      updated_at: "2026-06-01T12:00:00.000Z",
    });
    expect(record.name).toBe("hot-leads");
    const result = SequenceRecord.safeParse({
      ...example,
      tenant: "acme",
      name: "Hot Leads",
      updated_at: "x",
    });
    expect(result.success ? [] : describeIssues(result.error).map((i) => i.path)).toEqual([
      "name",
      "updated_at",
    ]);
  });

  it("a record keeps fields it does not know, nested too (a newer writer), where a request refuses them", () => {
    const newer = {
      ...example,
      match: { ...example.match, language: ["en"] },
      steps: [{ ...example.steps[0], quiet: true }],
      send_window: { ...example.send_window, holidays: "us" },
      tenant: "acme",
      name: "hot-leads",
      updated_at: "2026-06-01T12:00:00.000Z",
      owner: "ops",
    };
    const record = SequenceRecord.parse(newer);
    expect(record).toMatchObject({
      owner: "ops",
      match: { language: ["en"] },
      send_window: { holidays: "us" },
    });
    expect(record.steps[0]).toMatchObject({ quiet: true });
    const { tenant: _t, name: _n, updated_at: _u, owner: _o, ...body } = newer;
    expect(issues(body).map((i) => i.path)).toEqual(["match", "steps.0", "send_window"]);
    // The rules still hold in a record.
    const bad = SequenceRecord.safeParse({ ...newer, send_window: { start: "18:00", end: "09:00" } });
    expect(bad.success ? [] : describeIssues(bad.error).map((i) => i.path)).toEqual(["send_window.end"]);
  });
});

const lead: SequenceLead = { pred_prob: 0.8, intent: "lead_capture", urgency: "high", sentiment: "positive" };
const seq = (name: string, priority: number, match: Sequence["match"] = {}, enabled = true) => ({
  name,
  priority,
  match,
  enabled,
});

describe("matchSequence", () => {
  it("the highest priority that matches wins", () => {
    const chosen = matchSequence([seq("low", 1), seq("high", 9), seq("mid", 5)], lead);
    expect(chosen?.name).toBe("high");
  });

  it("a disabled sequence is never chosen, however high its priority", () => {
    expect(matchSequence([seq("off", 99, {}, false), seq("on", 1)], lead)?.name).toBe("on");
    expect(matchSequence([seq("off", 99, {}, false)], lead)).toBeNull();
  });

  it("equal priorities go to the name first in order, whatever order they are listed in", () => {
    const tied = [seq("zeta", 5), seq("alpha", 5), seq("beta", 5)];
    expect(matchSequence(tied, lead)?.name).toBe("alpha");
    expect(matchSequence([...tied].reverse(), lead)?.name).toBe("alpha");
    // Code-unit order, not locale order: '-' (0x2d) sorts before '_' (0x5f) and digits before letters.
    expect(matchSequence([seq("a_b", 5), seq("a-b", 5)], lead)?.name).toBe("a-b");
    expect(matchSequence([seq("b", 5), seq("1b", 5)], lead)?.name).toBe("1b");
  });

  it("none matching gives null", () => {
    expect(matchSequence([seq("strict", 1, { min_pred_prob: 0.9 })], lead)).toBeNull();
    expect(matchSequence([], lead)).toBeNull();
  });

  it.each([
    [{}, true, "no criterion matches every lead"],
    [{ min_pred_prob: 0.8 }, true, "pred_prob equal to the minimum qualifies"],
    [{ min_pred_prob: 0.81 }, false, "pred_prob below the minimum"],
    [{ intents: ["support", "lead_capture"] }, true, "intent in the list"],
    [{ intents: ["support"] }, false, "intent not in the list"],
    [{ urgency: ["high"] }, true, "urgency in the list"],
    [{ urgency: ["normal"] }, false, "urgency not in the list"],
    [{ sentiment: ["positive", "neutral"] }, true, "sentiment in the list"],
    [{ sentiment: ["negative"] }, false, "sentiment not in the list"],
    [
      { min_pred_prob: 0.5, intents: ["lead_capture"], urgency: ["normal"] },
      false,
      "every criterion must hold",
    ],
    [
      { min_pred_prob: 0.5, intents: ["lead_capture"], urgency: ["high"], sentiment: ["positive"] },
      true,
      "all hold",
    ],
  ] as const)("%j -> %s (%s)", (match, expected, _why) => {
    expect(sequenceMatches(Sequence.shape.match.parse(match), lead)).toBe(expected);
  });
});

describe("the built-in sequence and chooseSequence", () => {
  const env = {
    FOLLOWUP_ENABLED: true,
    FOLLOWUP_RULE_TOP_P: 0.7,
    FOLLOWUP_SCHEDULES: [1800, 7200, 1.5],
    FOLLOWUP_CHANNEL: "hook",
  };

  it("is today's rule: the threshold, one step per delay on the channel, no window", () => {
    const builtIn = builtInSequence(env);
    expect(builtIn).toEqual({
      name: BUILT_IN_SEQUENCE,
      enabled: true,
      priority: 0,
      match: { min_pred_prob: 0.7 },
      steps: [
        { delay: "1800s", channel: "hook" },
        { delay: "7200s", channel: "hook" },
        { delay: "1.5s", channel: "hook" },
      ],
      stop_on: ["booked", "unqualified", "spam"],
    });
    expect(builtIn.name).toBe("default");
    // The delays come back exactly, in the schedule's order (even when it is not sorted).
    expect(sequenceDelays(builtIn)).toEqual([1800, 7200, 1.5]);
  });

  it.each([
    [{}, 0.7, { sequence: "default" }, "pred_prob at the threshold qualifies, as today"],
    [{}, 0.69, { skipped: "below_threshold" }, "below the threshold"],
    [{ FOLLOWUP_ENABLED: false }, 0.9, { skipped: "disabled" }, "disabled comes first"],
    [
      { FOLLOWUP_SCHEDULES: [] },
      0.9,
      { skipped: "empty_schedule" },
      "an empty schedule (FOLLOWUP_SCHEDULES=none)",
    ],
    [
      { FOLLOWUP_ENABLED: false, FOLLOWUP_SCHEDULES: [] },
      0.1,
      { skipped: "disabled" },
      "today's order of reasons",
    ],
    [{ FOLLOWUP_SCHEDULES: [] }, 0.1, { skipped: "empty_schedule" }, "empty before below the threshold"],
  ])("a tenant without sequences: %j at %s -> %j (%s)", (overrides, predProb, expected, _why) => {
    const decision = chooseSequence([], builtInSequence({ ...env, ...overrides }), {
      ...lead,
      pred_prob: predProb,
    });
    expect("sequence" in decision ? { sequence: decision.sequence.name } : decision).toEqual(expected);
  });

  it("a tenant with sequences never falls back to the built-in one", () => {
    const own = Sequence.parse({ ...example, match: { min_pred_prob: 0.95 } });
    const record = {
      ...own,
      name: "hot",
      tenant: "acme",
      updated_at: "2026-06-01T00:00:00.000Z",
      revision: 3,
    };
    expect(chooseSequence([record], builtInSequence(env), lead)).toEqual({ skipped: "no_matching_sequence" });
    expect(chooseSequence([record], builtInSequence(env), { ...lead, pred_prob: 0.96 })).toEqual({
      sequence: record,
    });
    expect(chooseSequence([{ ...record, enabled: false }], builtInSequence(env), lead)).toEqual({
      skipped: "no_matching_sequence",
    });
  });
});
