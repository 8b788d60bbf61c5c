import { describe, expect, it } from "vitest";
import { arrivalOffsets } from "../arrivals.js";
import { serverTimeMs } from "../broker.js";
import { judgeGoals } from "../goals.js";
import { parseOptions } from "../options.js";
import { renderWorkload } from "../report.js";
import { median, percentileOfSorted, ratio, summarizeLateness } from "../stats.js";
import type { WorkloadResult } from "../workloads/workload.js";

// The bench's pure parts. The harness as a whole is exercised by `pnpm bench --smoke` in CI.

const WORKLOADS = ["scheduling", "burst", "idle", "intake", "durability", "scale"];

describe("stats", () => {
  it("takes the median of odd and even counts", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it("uses nearest-rank percentiles: p99 of 200 samples is the 198th", () => {
    const sorted = Array.from({ length: 200 }, (_, i) => i + 1);
    expect(percentileOfSorted(sorted, 99)).toBe(198);
    expect(percentileOfSorted(sorted, 50)).toBe(100);
    expect(percentileOfSorted([7], 99)).toBe(7);
  });

  it("counts early deliveries (negative lateness) apart", () => {
    const summary = summarizeLateness([5, -1, 20, 3]);
    expect(summary).toMatchObject({ count: 4, early: 1, max: 20, p50: 3 });
  });

  it("gives no ratio against a missing or zero peer", () => {
    expect(ratio(10, 5)).toBe(2);
    expect(ratio(10, 0)).toBeNaN();
    expect(ratio(Number.NaN, 5)).toBeNaN();
  });
});

describe("options", () => {
  it("defaults to 3 runs, and 1 in smoke mode", () => {
    expect(parseOptions([], WORKLOADS, "out").runs).toBe(3);
    expect(parseOptions(["--smoke"], WORKLOADS, "out")).toMatchObject({ smoke: true, runs: 1 });
  });

  it("reads --only, --runs and --engine-root", () => {
    const options = parseOptions(
      ["--only", "burst,idle", "--runs", "5", "--engine-root", "/tmp/x"],
      WORKLOADS,
      "out",
    );
    expect(options).toMatchObject({ only: ["burst", "idle"], runs: 5, engineRoot: "/tmp/x" });
  });

  it("names what is wrong with a bad argument", () => {
    expect(() => parseOptions(["--only", "nope"], WORKLOADS, "out")).toThrow(/unknown workload "nope"/);
    expect(() => parseOptions(["--runs", "0"], WORKLOADS, "out")).toThrow(/--runs: expected an integer/);
    expect(() => parseOptions(["--runs"], WORKLOADS, "out")).toThrow(/--runs needs a value/);
    expect(() => parseOptions(["--fast"], WORKLOADS, "out")).toThrow(/unknown argument "--fast"/);
  });
});

describe("arrivals", () => {
  it("are sorted, inside the window, and the same for the same seed", () => {
    const a = arrivalOffsets(200, 60_000, 7);
    expect(a).toEqual(arrivalOffsets(200, 60_000, 7));
    expect(a).not.toEqual(arrivalOffsets(200, 60_000, 8));
    expect([...a].sort((x, y) => x - y)).toEqual(a);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a)).toBeLessThan(60_000);
  });
});

describe("server timestamps", () => {
  it("keep their sub-millisecond digits", () => {
    const a = serverTimeMs("2026-01-01T00:00:00.000250000Z");
    const b = serverTimeMs("2026-01-01T00:00:00.001750000Z");
    expect(b - a).toBeCloseTo(1.5, 6);
  });
});

function result(partial: Partial<WorkloadResult> & Pick<WorkloadResult, "name" | "summary">): WorkloadResult {
  return {
    title: partial.name,
    size: "tiny",
    runs: 1,
    systems: ["engine", "bullmq"],
    metrics: [{ name: "rate", label: "follow-ups/s", unit: "1/s", better: "higher" }],
    values: {},
    notes: [],
    elapsedMs: 0,
    ...partial,
  };
}

describe("goals", () => {
  it("judges what was measured and leaves the rest unjudged", () => {
    const results = new Map([
      [
        "scheduling",
        result({
          name: "scheduling",
          summary: { engine: { rate: 900 }, bullmq: { rate: 1000 }, raw: { rate: 1600 } },
        }),
      ],
      ["idle", result({ name: "idle", summary: { engine: { p99: 40, early: 0 } } })],
    ]);
    const goals = judgeGoals(results);
    const byGoal = Object.fromEntries(goals.map((g) => [g.goal, g.met]));
    expect(byGoal["Scheduling throughput at least BullMQ's"]).toBe(false);
    expect(byGoal["Scheduling throughput within 2x of the raw JetStream ceiling"]).toBe(true);
    expect(byGoal["Idle p99 lateness under 100 ms"]).toBe(true);
    expect(byGoal["No early delivery when idle"]).toBe(true);
    expect(byGoal["Burst p99 lateness below BullMQ's"]).toBeNull();
  });
});

describe("report", () => {
  it("shows each system's number and engine ÷ peer", () => {
    const table = renderWorkload(
      result({ name: "scheduling", summary: { engine: { rate: 3000 }, bullmq: { rate: 1500 } } }),
    );
    expect(table).toContain("| engine | 3,000 |");
    expect(table).toContain("| BullMQ | 1,500 |");
    expect(table).toContain("| *engine ÷ BullMQ* | 2.00× |");
  });
});
