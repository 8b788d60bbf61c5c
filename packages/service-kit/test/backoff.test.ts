import { describe, expect, it } from "vitest";
import { type Backoff, backoffCeilingMs, backoffDelayMs, pause, retry } from "../src/index.js";

/** A seeded generator (Park-Miller's minimal standard): the same samples on every run. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 48_271) % 2_147_483_647;
    return (state - 1) / 2_147_483_646;
  };
}

const full: Backoff = { baseMs: 1_000, maxMs: 300_000, jitter: 1 };

describe("back-off: exponential, capped", () => {
  it("doubles the ceiling per attempt from the base and stops at the max", () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffCeilingMs(a, full))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000,
    ]);
    expect(backoffCeilingMs(9, full)).toBe(256_000);
    expect(backoffCeilingMs(10, full)).toBe(300_000);
    expect(backoffCeilingMs(1_000, full)).toBe(300_000);
  });

  it("without jitter, is the ceiling itself; an attempt below 1 counts as the first", () => {
    const exact: Backoff = { baseMs: 500, maxMs: 30_000 };
    expect([1, 2, 3, 4, 7, 8, 50].map((n) => backoffDelayMs(n, exact, () => 0.7))).toEqual([
      500, 1000, 2000, 4000, 30_000, 30_000, 30_000,
    ]);
    expect(backoffDelayMs(0, exact)).toBe(500);
    expect(backoffDelayMs(-3, { ...exact, jitter: 0.2 }, () => 0.999_999)).toBe(500);
  });

  it("with a base equal to the max, is a fixed delay", () => {
    const fixed: Backoff = { baseMs: 5_000, maxMs: 5_000 };
    expect([1, 2, 10, 100].map((n) => backoffDelayMs(n, fixed))).toEqual([5_000, 5_000, 5_000, 5_000]);
  });
});

describe("back-off: jitter", () => {
  it("full jitter keeps every sampled delay within [0, ceiling], spread over the range", () => {
    const random = seeded(42);
    for (const attempt of [1, 2, 3, 6, 12]) {
      const ceiling = backoffCeilingMs(attempt, full);
      const samples = Array.from({ length: 2_000 }, () => backoffDelayMs(attempt, full, random));
      expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...samples)).toBeLessThanOrEqual(ceiling);
      expect(samples.every(Number.isInteger)).toBe(true);
      // Full jitter: the samples cover the range rather than cluster at the ceiling.
      expect(Math.min(...samples)).toBeLessThan(ceiling * 0.1);
      expect(Math.max(...samples)).toBeGreaterThan(ceiling * 0.9);
    }
  });

  it("grows on average with the attempt", () => {
    const random = seeded(7);
    const mean = (attempt: number) =>
      Array.from({ length: 2_000 }, () => backoffDelayMs(attempt, full, random)).reduce((a, b) => a + b, 0) /
      2_000;
    expect(mean(2)).toBeGreaterThan(mean(1) * 1.5);
    expect(mean(4)).toBeGreaterThan(mean(3) * 1.5);
  });

  it("maps the random source onto the ends of the range", () => {
    expect(backoffDelayMs(3, full, () => 0)).toBe(0);
    expect(backoffDelayMs(3, full, () => 0.999_999_9)).toBe(4_000);
    expect(backoffDelayMs(5, full, () => 0.9)).toBe(14_400);
  });

  it("partial jitter takes off at most its share of the ceiling", () => {
    const fifth: Backoff = { baseMs: 500, maxMs: 30_000, jitter: 0.2 };
    expect(backoffDelayMs(1, fifth, () => 0)).toBe(400);
    expect(backoffDelayMs(1, fifth, () => 0.999_999)).toBe(500);
    expect(backoffDelayMs(100, fifth, () => 0)).toBe(30_000 * 0.8);
    expect(backoffDelayMs(100, fifth, () => 1)).toBe(30_000);
    const random = seeded(1);
    const samples = Array.from({ length: 2_000 }, () => backoffDelayMs(3, fifth, random));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(1_600);
    expect(Math.max(...samples)).toBeLessThanOrEqual(2_000);
    expect(Math.min(...samples)).toBeLessThan(1_650);
    expect(Math.max(...samples)).toBeGreaterThan(1_950);
  });
});

describe("pause", () => {
  it("resolves true after the time, false at once on an aborted signal or as soon as it aborts", async () => {
    const started = performance.now();
    expect(await pause(30)).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);

    expect(await pause(60_000, AbortSignal.abort())).toBe(false);
    const controller = new AbortController();
    const paused = pause(60_000, controller.signal);
    controller.abort();
    expect(await paused).toBe(false);
  });
});

describe("retry", () => {
  const quick: Backoff = { baseMs: 1, maxMs: 4, attempts: 4 };

  it("runs again after a retryable failure, telling each pause, until it succeeds", async () => {
    const told: [number, number][] = [];
    const result = await retry(
      async (attempt) => {
        if (attempt < 3) throw new Error(`failure ${attempt}`);
        return attempt;
      },
      quick,
      { retryable: () => true, onRetry: (_err, attempt, delayMs) => told.push([attempt, delayMs]) },
    );
    expect(result).toBe(3);
    expect(told).toEqual([
      [1, 1],
      [2, 2],
    ]);
  });

  it("throws the last failure once its attempts are spent, and a non-retryable one at once", async () => {
    let runs = 0;
    const failing = async (attempt: number) => {
      runs++;
      throw new Error(`failure ${attempt}`);
    };
    await expect(retry(failing, quick, { retryable: () => true })).rejects.toThrow("failure 4");
    expect(runs).toBe(4);
    runs = 0;
    await expect(retry(failing, quick, { retryable: () => false })).rejects.toThrow("failure 1");
    expect(runs).toBe(1);
  });
});
