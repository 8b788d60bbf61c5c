/**
 * Pure arithmetic of the bench: medians across runs, percentiles of lateness, ratios to peers.
 * Percentiles use the nearest-rank method, so p99 of 200 samples is the 198th: a real sample,
 * never an interpolation between two.
 */

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile of already sorted values; NaN when there are none. */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface LatenessSummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  /** Deliveries before their due time: the engine promises none. */
  early: number;
}

/** Lateness (arrival minus due, ms) of a set of deliveries. */
export function summarizeLateness(latenessMs: readonly number[]): LatenessSummary {
  const sorted = [...latenessMs].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentileOfSorted(sorted, 50),
    p99: percentileOfSorted(sorted, 99),
    max: sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN,
    early: sorted.filter((v) => v < 0).length,
  };
}

/** engine ÷ peer; NaN when either is missing or the peer is zero. */
export function ratio(engine: number, peer: number): number {
  if (!Number.isFinite(engine) || !Number.isFinite(peer) || peer === 0) return Number.NaN;
  return engine / peer;
}
