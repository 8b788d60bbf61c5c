import { describe, expect, it } from "vitest";
import { assignVariant, experimentPoint, inHoldout, planExperiment } from "../src/experiments.js";

const leadIds = (n: number) => Array.from({ length: n }, (_, i) => `lead-${i.toString(36)}`);

describe("assignVariant", () => {
  const variants = [
    { name: "a", template: "t1", weight: 50 },
    { name: "b", template: "t2", weight: 30 },
    { name: "c", template: "t3", weight: 20 },
  ];

  it("is stable: the same tenant, sequence and lead always get the same variant", () => {
    // Pinned (python3: int.from_bytes(sha256(b"variant\0acme\0spring\0lead-1")[:6]) / 2**48): a
    // change of the hash would reassign every running experiment's leads.
    expect(assignVariant("acme", "spring", "lead-1", variants).name).toBe(
      assignVariant("acme", "spring", "lead-1", [...variants]).name,
    );
    expect(experimentPoint("variant", "acme", "spring", "lead-1")).toBeCloseTo(0.683058973675, 11);
    for (const id of leadIds(200)) {
      expect(assignVariant("acme", "spring", id, variants)).toBe(
        assignVariant("acme", "spring", id, variants),
      );
    }
  });

  it("depends on the tenant and the sequence, not only the lead", () => {
    const ids = leadIds(500);
    const differs = (f: (id: string) => string) =>
      ids.filter((id) => assignVariant("acme", "spring", id, variants).name !== f(id)).length;
    expect(differs((id) => assignVariant("other", "spring", id, variants).name)).toBeGreaterThan(150);
    expect(differs((id) => assignVariant("acme", "autumn", id, variants).name)).toBeGreaterThan(150);
  });

  it("respects the weights within 1.5 points over 10k synthetic leads", () => {
    const counts = new Map<string, number>();
    const ids = leadIds(10_000);
    for (const id of ids) {
      const v = assignVariant("acme", "spring", id, variants).name;
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    // 3 standard deviations of a share of 0.5 over 10k is 1.5 points.
    expect(Math.abs((counts.get("a") ?? 0) / 10_000 - 0.5)).toBeLessThan(0.015);
    expect(Math.abs((counts.get("b") ?? 0) / 10_000 - 0.3)).toBeLessThan(0.015);
    expect(Math.abs((counts.get("c") ?? 0) / 10_000 - 0.2)).toBeLessThan(0.015);
  });

  it("refuses no variants and a zero total weight", () => {
    expect(() => assignVariant("acme", "s", "l", [])).toThrow(/at least one/);
    expect(() => assignVariant("acme", "s", "l", [{ name: "a", weight: 0 }])).toThrow(/positive/);
  });
});

describe("inHoldout", () => {
  it("holds out about pct percent, never at 0, and a lead held out at 10 stays held out at 20", () => {
    const ids = leadIds(10_000);
    const at10 = ids.filter((id) => inHoldout("acme", "spring", id, 10));
    expect(Math.abs(at10.length / 10_000 - 0.1)).toBeLessThan(0.009);
    expect(at10.every((id) => inHoldout("acme", "spring", id, 20))).toBe(true);
    expect(ids.some((id) => inHoldout("acme", "spring", id, 0))).toBe(false);
  });

  it("is independent of the variant: the holdout takes its share of every variant", () => {
    const variants = [
      { name: "a", weight: 1 },
      { name: "b", weight: 1 },
    ];
    const held = leadIds(10_000).filter((id) => inHoldout("acme", "spring", id, 20));
    const a = held.filter((id) => assignVariant("acme", "spring", id, variants).name === "a").length;
    expect(Math.abs(a / held.length - 0.5)).toBeLessThan(0.035);
  });
});

describe("planExperiment", () => {
  it("gives each step with variants a variant and its template, and keeps other steps' templates", () => {
    const sequence = {
      name: "spring",
      holdout_pct: 0,
      steps: [
        {
          variants: [
            { name: "a", template: "t1", weight: 1 },
            { name: "b", template: "t2", weight: 1 },
          ],
        },
        { template: "recap" },
        {},
      ],
    };
    const plan = planExperiment("acme", sequence, "lead-1");
    expect(plan.holdout).toBe(false);
    const variant = assignVariant("acme", "spring", "lead-1", sequence.steps[0]!.variants!);
    expect(plan.steps).toEqual([
      { variant: variant.name, template: variant.template },
      { template: "recap" },
      {},
    ]);
  });
});
