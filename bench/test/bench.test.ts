import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { arrivalOffsets } from "../arrivals.js";
import { serverTimeMs } from "../broker.js";
import { judgeGoals } from "../goals.js";
import { parseOptions } from "../options.js";
import { REDIS_PERSISTENCE_ARGS } from "../peers/redis.js";
import { summarizeCpuProfile } from "../pprof.js";
import { cpuPer1kDuring } from "../processes.js";
import { renderGoals, renderWorkload } from "../report.js";
import { median, percentileOfSorted, ratio, summarizeLateness } from "../stats.js";
import { ceilingNotes } from "../workloads/limits.js";
import type { WorkloadResult } from "../workloads/workload.js";

// The bench's pure parts. The harness as a whole is exercised by `pnpm bench --smoke` in CI.

const WORKLOADS = ["limits", "scheduling", "burst", "idle", "intake", "durability", "scale"];

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
          summary: {
            engine: { rate: 900, clientCpu: 205 },
            // The no-persistence peer is faster; the goal is judged against the fsync-always one.
            bullmq: { rate: 100 },
            bullmqFsync: { rate: 1000 },
            raw: { rate: 1600 },
          },
        }),
      ],
      ["limits", result({ name: "limits", summary: { machine: { batchRate: 1600 } } })],
      ["idle", result({ name: "idle", summary: { engine: { p99: 40, early: 0 } } })],
    ]);
    const goals = judgeGoals(results);
    const byGoal = Object.fromEntries(goals.map((g) => [g.goal, g]));
    expect(byGoal["Scheduling 100k at sync always: at least BullMQ-appendfsync-always's rate"]).toMatchObject(
      {
        met: false,
        ratio: 0.9,
        target: ">= 1.00",
      },
    );
    expect(
      byGoal["Scheduling 100k at sync always: at least half the raw atomic-batch timer rate"],
    ).toMatchObject({
      met: true,
      ratio: 900 / 1600,
      target: ">= 0.50",
    });
    expect(byGoal["Scheduler CPU under 100 ms per 1000 follow-ups"]).toMatchObject({
      met: false,
      ratio: 2.05,
    });
    expect(byGoal["Idle p99 lateness under 100 ms"]?.met).toBe(true);
    expect(byGoal["No early delivery when idle"]?.met).toBe(true);
    expect(byGoal["Burst of 20k: p99 lateness at most BullMQ-appendfsync-always's"]).toMatchObject({
      met: null,
      ratio: null,
    });
    expect(byGoal["Intake at least 0.8x the bare publish route"]?.met).toBeNull();
  });

  it("holds the burst to BullMQ-appendfsync-always's and half the native scheduler's", () => {
    const burst = result({
      name: "burst",
      summary: {
        engine: { p99: 900, drain: 2 },
        bullmqFsync: { p99: 1000, drain: 2 },
        native: { p99: 1800, drain: 5 },
      },
    });
    const byGoal = Object.fromEntries(judgeGoals(new Map([["burst", burst]])).map((g) => [g.goal, g.met]));
    expect(byGoal["Burst of 20k: drain time at most BullMQ-appendfsync-always's"]).toBe(true);
    expect(byGoal["Burst of 20k: p99 lateness at most BullMQ-appendfsync-always's"]).toBe(true);
    expect(byGoal["Burst of 20k: drain time under half the native scheduler's"]).toBe(true);
    // 900 is not under 1800 / 2.
    expect(byGoal["Burst of 20k: p99 lateness under half the native scheduler's"]).toBe(false);
  });

  it("misses on a single early delivery", () => {
    const idle = result({ name: "idle", summary: { engine: { p99: 40, early: 1 } } });
    const early = judgeGoals(new Map([["idle", idle]])).find((g) => g.goal === "No early delivery when idle");
    expect(early).toMatchObject({ met: false, target: "0 early" });
  });

  it("shows each goal's ratio and target in the report", () => {
    const table = renderGoals([
      {
        goal: "Intake at least 0.8x the bare publish route",
        met: false,
        ratio: 0.75,
        target: ">= 0.80",
        detail: "x",
      },
    ]);
    expect(table).toContain(
      "| Intake at least 0.8x the bare publish route | 0.75× | >= 0.80 | **missed** | x |",
    );
  });
});

describe("CPU per 1000", () => {
  it("takes what each reader's processes spent while the work ran, in all and in the kernel", async () => {
    const counters = { a: { user: 100, system: 40 }, b: { user: 7, system: 0 } };
    const cpu = await cpuPer1kDuring(
      2000,
      { a: () => ({ ...counters.a }), b: () => ({ ...counters.b }) },
      async () => {
        counters.a = { user: 130, system: 50 };
        counters.b = { user: 9, system: 1 };
      },
    );
    expect(cpu).toEqual({ a: { all: 20, system: 5 }, b: { all: 2, system: 1 } });
  });
});

describe("ceilings", () => {
  it("put scheduling and burst beside this run's physical limits", () => {
    const results = new Map([
      [
        "limits",
        result({
          name: "limits",
          systems: ["machine"],
          summary: { machine: { fsyncRate: 8000, batchRate: 20000, hookDrain: 2 } },
        }),
      ],
      ["scheduling", result({ name: "scheduling", summary: { engine: { rate: 4000 } } })],
      [
        "burst",
        result({
          name: "burst",
          systems: ["engine", "native"],
          summary: { engine: { drain: 10 }, native: { drain: 4 } },
        }),
      ],
    ]);
    const notes = Object.fromEntries(ceilingNotes(results));
    expect(notes.scheduling).toContain("engine 0.20× and 0.50×");
    expect(notes.burst).toContain("engine 5.00×, NATS native schedule 2.00×");
  });

  it("are left out when the limits were not measured", () => {
    const scheduling = result({ name: "scheduling", summary: { engine: { rate: 4000 } } });
    expect(ceilingNotes(new Map([["scheduling", scheduling]]))).toEqual([]);
  });
});

describe("redis peers", () => {
  it("start the fsync-always one with an append-only file fsync'd on every write, the other without persistence", () => {
    expect(REDIS_PERSISTENCE_ARGS["fsync-always"].join(" ")).toBe(
      "--save  --appendonly yes --appendfsync always",
    );
    expect(REDIS_PERSISTENCE_ARGS.none.join(" ")).toBe("--save  --appendonly no");
  });
});

describe("report", () => {
  it("shows each system's number and engine ÷ peer", () => {
    const table = renderWorkload(
      result({ name: "scheduling", summary: { engine: { rate: 3000 }, bullmq: { rate: 1500 } } }),
    );
    expect(table).toContain("| engine | 3,000 |");
    expect(table).toContain("| BullMQ, no persistence | 1,500 |");
    expect(table).toContain("| *engine ÷ BullMQ, no persistence* | 2.00× |");
  });
});

describe("a Go CPU profile summed by function (bench/pprof.ts)", () => {
  // The pprof protobuf written by hand: varints and length-delimited fields.
  const varint = (n: number): number[] => {
    const out: number[] = [];
    let v = n;
    while (v >= 0x80) {
      out.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(v);
    return out;
  };
  const num = (no: number, v: number) => [...varint(no << 3), ...varint(v)];
  const msg = (no: number, body: number[]) => [...varint((no << 3) | 2), ...varint(body.length), ...body];
  const packed = (no: number, vs: number[]) => msg(no, vs.flatMap(varint));
  const str = (s: string) => [...Buffer.from(s)];
  const strings = ["", "samples", "count", "cpu", "nanoseconds", "main", "store", "fsync", "inlined"];
  const at = (s: string) => strings.indexOf(s);
  const profile = (): Uint8Array =>
    Uint8Array.from([
      ...msg(1, [...num(1, at("samples")), ...num(2, at("count"))]),
      ...msg(1, [...num(1, at("cpu")), ...num(2, at("nanoseconds"))]),
      // functions 1-4; location 1: main, 2: store, 3: fsync with `inlined` inlined into it
      ...[
        [1, "main"],
        [2, "store"],
        [3, "fsync"],
        [4, "inlined"],
      ].flatMap(([id, name]) => msg(5, [...num(1, id as number), ...num(2, at(name as string))])),
      ...msg(4, [...num(1, 1), ...msg(4, num(1, 1))]),
      ...msg(4, [...num(1, 2), ...msg(4, num(1, 2))]),
      ...msg(4, [...num(1, 3), ...msg(4, num(1, 4)), ...msg(4, num(1, 3))]),
      // samples, leaf first: 30 ms in fsync<-store<-main, 10 ms in store<-main, 5 ms in main
      ...msg(2, [...packed(1, [3, 2, 1]), ...packed(2, [3, 30_000_000])]),
      ...msg(2, [...packed(1, [2, 1]), ...packed(2, [1, 10_000_000])]),
      ...msg(2, [...packed(1, [1]), ...packed(2, [1, 5_000_000])]),
      ...strings.flatMap((s) => msg(6, str(s))),
      ...num(10, 2_000_000_000),
    ]);

  it("reads the cpu value of each sample: own time by innermost frame, inclusive once per sample", () => {
    const summary = summarizeCpuProfile(profile());
    expect(summary.totalNs).toBe(45_000_000);
    expect(summary.durationNs).toBe(2_000_000_000);
    expect(Object.fromEntries(summary.self)).toEqual({
      inlined: 30_000_000,
      store: 10_000_000,
      main: 5_000_000,
    });
    expect(Object.fromEntries(summary.inclusive)).toEqual({
      inlined: 30_000_000,
      fsync: 30_000_000,
      store: 40_000_000,
      main: 45_000_000,
    });
  });

  it("takes the gzipped form nats-server serves, and refuses what is not a profile", () => {
    expect(summarizeCpuProfile(gzipSync(profile())).totalNs).toBe(45_000_000);
    expect(() => summarizeCpuProfile(Uint8Array.from([0x0b]))).toThrow(/not a pprof profile/);
  });
});
