/**
 * When to try a failed follow-up again: exponential back-off with full jitter
 * (a uniform delay in [0, min(max, base * 2^(attempt-1))]), so copies retrying a
 * recovering hook spread out instead of arriving together. A `Retry-After` from
 * the channel is a floor: never sooner than the receiver asked.
 */

export interface BackoffPolicy {
  /** The ceiling after the first failed attempt. */
  baseMs: number;
  /** No ceiling grows beyond this. */
  maxMs: number;
}

/** A receiver asking for more than a day is treated as asking for a day: the follow-up stays retryable. */
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/** The upper bound of the delay after failed attempt `attempt` (1-based). */
export function backoffCeilingMs(attempt: number, policy: BackoffPolicy): number {
  const exponent = Math.max(0, Math.floor(attempt) - 1);
  // 2^exponent overflows to Infinity long before it matters; min() keeps it at maxMs.
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(exponent, 60));
}

/** The delay before the next attempt after failed attempt `attempt`, in whole milliseconds. */
export function retryDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  options: { retryAfterMs?: number | null; random?: () => number } = {},
): number {
  const random = options.random ?? Math.random;
  const jittered = Math.floor(random() * (backoffCeilingMs(attempt, policy) + 1));
  const floor = options.retryAfterMs ?? 0;
  return Math.max(jittered, Math.min(Math.max(0, floor), MAX_RETRY_AFTER_MS));
}

/**
 * Parses a `Retry-After` header (RFC 9110: delta-seconds or an HTTP-date) into milliseconds
 * from `now`; null when absent or unreadable. A date in the past means "now" (0).
 */
export function parseRetryAfter(value: string | string[] | undefined, now: Date = new Date()): number | null {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return null;
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  // Only the HTTP-date forms: Date.parse would also accept "5" or "tomorrow-ish" strings.
  if (!/^[A-Za-z]{3},? /.test(text) && !/^[A-Za-z]+day, /.test(text)) return null;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.min(Math.max(0, at - now.getTime()), MAX_RETRY_AFTER_MS);
}
