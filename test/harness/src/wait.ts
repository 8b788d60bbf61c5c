/** Options for {@link waitFor}. */
export interface WaitForOptions {
  /** What is being waited for, as it should read in the error: "the stream to hold 3 messages". */
  description: string;
  /** Give up after this long. Default 10 000 ms. */
  timeoutMs?: number;
  /** Pause between probes. Default 50 ms. */
  intervalMs?: number;
}

type Truthy<T> = Exclude<T, false | 0 | "" | null | undefined>;

/**
 * Polls `probe` until it returns a truthy value, and resolves with that value.
 *
 * A probe that returns a falsy value or throws (or rejects) is simply tried again after `intervalMs`,
 * so a probe can be written as an assertion. A probe that is still running when the deadline passes is
 * abandoned. On the deadline it rejects with an error that names `description` and carries the last
 * error thrown (or the last falsy value returned).
 *
 * This is the one way tests wait for a condition; do not sleep and hope.
 */
export async function waitFor<T>(probe: () => T | Promise<T>, options: WaitForOptions): Promise<Truthy<T>> {
  const { description, timeoutMs = 10_000, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  let lastOutcome = "the probe never completed";
  let attempts = 0;
  for (;;) {
    attempts++;
    const remaining = deadline - Date.now();
    try {
      const value = await withinMs(Promise.resolve().then(probe), Math.max(remaining, 1));
      if (value) return value as Truthy<T>;
      lastOutcome = `last value: ${String(value)}`;
    } catch (err) {
      if (err === ABANDONED) break;
      lastOutcome = `last error: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (Date.now() + intervalMs > deadline) break;
    await pause(intervalMs);
  }
  throw new Error(
    `Timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${description}; ${lastOutcome}`,
  );
}

const ABANDONED = Symbol("abandoned");

function withinMs<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(ABANDONED), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
