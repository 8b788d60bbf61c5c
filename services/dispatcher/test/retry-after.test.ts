import { backoffCeilingMs } from "@followup/service-kit";
import { describe, expect, it } from "vitest";
import { MAX_RETRY_AFTER_MS, nextAttemptDelayMs, parseRetryAfter } from "../src/retry-after.js";

// The back-off itself (exponential, cap, jitter) is tested with the kit (packages/service-kit/test/backoff.test.ts).
const policy = { baseMs: 1_000, maxMs: 300_000 };

describe("the next attempt's delay (full jitter, Retry-After as a floor)", () => {
  it("keeps every sampled delay within [0, ceiling], spread over the range", () => {
    for (const attempt of [1, 3, 12]) {
      const ceiling = backoffCeilingMs(attempt, policy);
      const samples = Array.from({ length: 2_000 }, () => nextAttemptDelayMs(attempt, policy));
      expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...samples)).toBeLessThanOrEqual(ceiling);
      expect(Math.min(...samples)).toBeLessThan(ceiling * 0.1);
      expect(Math.max(...samples)).toBeGreaterThan(ceiling * 0.9);
    }
  });

  it("maps the random source onto the ends of the range", () => {
    expect(nextAttemptDelayMs(3, policy, { random: () => 0 })).toBe(0);
    expect(nextAttemptDelayMs(3, policy, { random: () => 0.999_999_9 })).toBe(4_000);
  });

  it("is never below a Retry-After, even above the ceiling", () => {
    for (let i = 0; i < 500; i++) {
      expect(nextAttemptDelayMs(1, policy, { retryAfterMs: 2_000 })).toBeGreaterThanOrEqual(2_000);
      expect(nextAttemptDelayMs(1, { baseMs: 200, maxMs: 1_000 }, { retryAfterMs: 5_000 })).toBe(5_000);
    }
    expect(nextAttemptDelayMs(5, policy, { retryAfterMs: 1_000, random: () => 0.9 })).toBe(14_400);
    expect(nextAttemptDelayMs(1, policy, { retryAfterMs: 10 * MAX_RETRY_AFTER_MS })).toBe(MAX_RETRY_AFTER_MS);
  });
});

describe("Retry-After parsing", () => {
  const now = new Date("2026-03-01T12:00:00Z");

  it("reads delta-seconds", () => {
    expect(parseRetryAfter("2", now)).toBe(2_000);
    expect(parseRetryAfter(" 120 ", now)).toBe(120_000);
    expect(parseRetryAfter("0", now)).toBe(0);
    expect(parseRetryAfter(["7", "9"], now)).toBe(7_000);
  });

  it("reads an HTTP-date (IMF-fixdate, RFC 850, asctime) relative to now", () => {
    expect(parseRetryAfter("Sun, 01 Mar 2026 12:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Sunday, 01-Mar-26 12:01:00 GMT", now)).toBe(60_000);
    expect(parseRetryAfter("Sun Mar  1 12:00:05 2026", now)).toBe(5_000);
  });

  it("treats a past date as now and clamps a far one to a day", () => {
    expect(parseRetryAfter("Sat, 28 Feb 2026 12:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("Wed, 01 Apr 2026 12:00:00 GMT", now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter("99999999", now)).toBe(MAX_RETRY_AFTER_MS);
  });

  it("ignores what it cannot read", () => {
    for (const value of [undefined, "", "soon", "-5", "1.5", "2026-03-01T12:00:30Z", "Sun, not a date"]) {
      expect(parseRetryAfter(value, now)).toBeNull();
    }
  });
});
