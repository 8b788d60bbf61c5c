/** Numbers a test measured (lateness, durations), summarized for its log and for asserts. */
export interface Summary {
  count: number;
  min: number;
  p50: number;
  p95: number;
  max: number;
}

/** count, min, p50, p95 and max (nearest rank) of `values`; NaN for an empty list. */
export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: rank(0.5) ?? Number.NaN,
    p95: rank(0.95) ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
  };
}

/** `label: 400 values, min 3 ms, p50 12 ms, p95 40 ms, max 61 ms`. */
export function describeSummary(label: string, values: readonly number[], unit = "ms"): string {
  const s = summarize(values);
  const n = (v: number) => `${Math.round(v)} ${unit}`;
  return `${label}: ${s.count} values, min ${n(s.min)}, p50 ${n(s.p50)}, p95 ${n(s.p95)}, max ${n(s.max)}`;
}
