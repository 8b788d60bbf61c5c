/**
 * When the idle workload's leads arrive: `count` instants spread at random over `windowMs`,
 * sorted, from a seeded generator so that every system in a run gets the same instants and a
 * run can be repeated exactly.
 */
export function arrivalOffsets(count: number, windowMs: number, seed: number): number[] {
  const next = mulberry32(seed);
  return Array.from({ length: count }, () => next() * windowMs).sort((a, b) => a - b);
}

/** A small, well-known 32-bit generator; good enough to scatter arrivals, not for secrets. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
