/**
 * Runs `task(0..count-1)` with at most `window` in flight, in order of index, and resolves with
 * the elapsed milliseconds from the first start to the last completion. This is how every
 * publisher in the bench keeps the broker busy without an unbounded pile of promises.
 */
export async function inWindow(
  count: number,
  window: number,
  task: (index: number) => Promise<unknown>,
): Promise<number> {
  const started = performance.now();
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(window, count)) }, async () => {
    while (next < count) {
      const index = next++;
      await task(index);
    }
  });
  await Promise.all(lanes);
  return performance.now() - started;
}
