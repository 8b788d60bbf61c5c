import { type Backoff, backoffDelayMs } from "@followup/service-kit";

/**
 * When to try a failed follow-up again: the shared back-off with full jitter (a uniform delay
 * in [0, min(max, base * 2^(attempt-1))]), so copies retrying a recovering hook spread out
 * instead of arriving together. A `Retry-After` from the channel is a floor: never sooner than
 * the receiver asked.
 */

/** FOLLOWUP_RETRY_BASE_MS and FOLLOWUP_RETRY_MAX_MS. */
export type DeliveryBackoff = Pick<Backoff, "baseMs" | "maxMs">;

/** A receiver asking for more than a day is treated as asking for a day: the follow-up stays retryable. */
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/** The delay before the next attempt after failed attempt `attempt`, in whole milliseconds. */
export function nextAttemptDelayMs(
  attempt: number,
  backoff: DeliveryBackoff,
  options: { retryAfterMs?: number | null; random?: () => number } = {},
): number {
  const jittered = backoffDelayMs(attempt, { ...backoff, jitter: 1 }, options.random);
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
