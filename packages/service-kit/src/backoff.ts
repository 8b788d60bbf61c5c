/**
 * The one back-off policy of the engine, parameterised by each caller: exponential from a base,
 * capped, with optional jitter, over a number of attempts. Pure, except `pause` and `retry`,
 * which wait.
 */
export interface Backoff {
  /** The delay (with jitter: its ceiling) after the first failed attempt. */
  baseMs: number;
  /** No delay grows beyond this; `baseMs` equal to it makes a fixed delay. */
  maxMs: number;
  /**
   * The part of the ceiling drawn at random: the delay is uniform in
   * [ceiling * (1 - jitter), ceiling]. 0 (the default) is none; 1 is full jitter, so copies that
   * failed together spread out instead of retrying together.
   */
  jitter?: number;
  /** Attempts in all, the first included (for `retry`); unlimited when absent. */
  attempts?: number;
}

/** The ceiling of the delay after failed attempt `attempt` (1-based; below 1 counts as 1). */
export function backoffCeilingMs(attempt: number, backoff: Backoff): number {
  const exponent = Math.max(0, Math.floor(attempt) - 1);
  // 2^exponent overflows to Infinity long before it matters; min() keeps it at maxMs.
  return Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(exponent, 60));
}

/** The delay before the next attempt after failed attempt `attempt`, in whole milliseconds. */
export function backoffDelayMs(
  attempt: number,
  backoff: Backoff,
  random: () => number = Math.random,
): number {
  const ceiling = backoffCeilingMs(attempt, backoff);
  const jitter = Math.min(1, Math.max(0, backoff.jitter ?? 0));
  const floor = ceiling * (1 - jitter);
  return Math.min(ceiling, Math.floor(floor + random() * (ceiling - floor + 1)));
}

/**
 * Resolves true after `ms`, or false as soon as `signal` aborts (at once when it has). The timer
 * does not keep the process alive: a pause is never a reason not to exit.
 */
export function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    timer.unref();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export interface RetryOptions {
  /** Whether a failure is worth another attempt; the first that is not is thrown at once. */
  retryable: (err: unknown) => boolean;
  /** Told before each pause. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  random?: () => number;
}

/**
 * Runs `run` until it succeeds, a failure is not retryable, or `backoff.attempts` are spent,
 * pausing by the back-off between attempts; throws the last failure.
 */
export async function retry<T>(
  run: (attempt: number) => Promise<T>,
  backoff: Backoff,
  options: RetryOptions,
): Promise<T> {
  const attempts = backoff.attempts ?? Number.POSITIVE_INFINITY;
  for (let attempt = 1; ; attempt++) {
    try {
      return await run(attempt);
    } catch (err) {
      if (attempt >= attempts || !options.retryable(err)) throw err;
      const delayMs = backoffDelayMs(attempt, backoff, options.random);
      options.onRetry?.(err, attempt, delayMs);
      await pause(delayMs);
    }
  }
}
