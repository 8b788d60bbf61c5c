import { describe, expect, it } from "vitest";
import { describeIssues, Sequence, SequenceRecord } from "../src/index.js";

const variants = [
  { name: "a", template: "t1", weight: 50 },
  { name: "b", template: "t2", weight: 50 },
];
const step = { delay: "30m", channel: "sms" };

function issues(input: unknown): { path: string; message: string }[] {
  const result = Sequence.safeParse(input);
  return result.success ? [] : describeIssues(result.error);
}

describe("a step's variants and a sequence's holdout", () => {
  it("accepts the issue's example: two variants of 50 and a holdout of 10%", () => {
    const parsed = Sequence.parse({ steps: [{ ...step, variants }], holdout_pct: 10 });
    expect(parsed.steps[0]?.variants).toEqual(variants);
    expect(parsed.holdout_pct).toBe(10);
  });

  it.each([
    [
      "variants with a template",
      { steps: [{ ...step, template: "t0", variants }] },
      "steps.0.variants",
      "must not be given with template",
    ],
    [
      "one variant",
      { steps: [{ ...step, variants: [variants[0]] }] },
      "steps.0.variants",
      "at least two variants",
    ],
    [
      "a zero weight",
      { steps: [{ ...step, variants: [variants[0], { ...variants[1], weight: 0 }] }] },
      "steps.0.variants.1.weight",
      "positive integer",
    ],
    [
      "a fractional weight",
      { steps: [{ ...step, variants: [{ ...variants[0], weight: 2.5 }, variants[1]] }] },
      "steps.0.variants.0.weight",
      "positive integer",
    ],
    [
      "a repeated name",
      { steps: [{ ...step, variants: [variants[0], { ...variants[1], name: "a" }] }] },
      "steps.0.variants.1.name",
      "repeats the name of variant 1",
    ],
    [
      "a variant without template",
      { steps: [{ ...step, variants: [variants[0], { name: "b", weight: 1 }] }] },
      "steps.0.variants.1.template",
      "template name",
    ],
    [
      "an unknown variant field",
      { steps: [{ ...step, variants: [variants[0], { ...variants[1], share: 1 }] }] },
      "steps.0.variants.1",
      "share",
    ],
    ["a holdout above 50", { steps: [step], holdout_pct: 60 }, "holdout_pct", "0 to 50"],
    ["a negative holdout", { steps: [step], holdout_pct: -1 }, "holdout_pct", "0 to 50"],
  ])("%s fails on %s", (_what, input, path, message) => {
    const found = issues(input);
    expect(found.map((i) => i.path)).toEqual([path]);
    expect(found[0]?.message).toContain(message);
  });

  it("a stored record keeps a variant's unknown fields and still refuses a template beside variants", () => {
    const base = { tenant: "acme", name: "spring", updated_at: "2026-12-01T00:00:00.000Z" };
    const stored = SequenceRecord.parse({
      ...base,
      steps: [{ ...step, variants: [{ ...variants[0], note: "x" }, variants[1]] }],
    });
    expect(stored.steps[0]?.variants?.[0]).toMatchObject({ name: "a", note: "x" });
    expect(
      SequenceRecord.safeParse({ ...base, steps: [{ ...step, template: "t0", variants }] }).success,
    ).toBe(false);
  });
});
