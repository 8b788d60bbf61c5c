/**
 * The statistics of the conversion reports, written once: the reports service computes them for
 * its routes and its rebuild, tests check them against values computed independently
 * (packages/contracts/test/stats.test.ts says how).
 */

/** The two-sided 95% quantile of the standard normal distribution. */
export const Z_95 = 1.959963984540054;

/**
 * erfc(x) for x >= 0 by Abramowitz and Stegun 7.1.26 (Hastings): absolute error at most 1.5e-7
 * over the whole range, so a p-value is right to about 1e-7 (a tiny one is reported as about 0).
 */
function erfcNonNegative(x: number): number {
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return poly * Math.exp(-x * x);
}

/** The standard normal CDF Φ(z), through erfc above (absolute error at most 7.5e-8). */
export function normalCdf(z: number): number {
  const e = erfcNonNegative(Math.abs(z) / Math.SQRT2) / 2;
  return z >= 0 ? 1 - e : e;
}

export interface Interval {
  low: number;
  high: number;
}

/**
 * The Wilson score interval of a proportion `successes / n` (95% by default). Unlike the normal
 * approximation it stays inside [0, 1] and is sensible at 0 or n successes and for small n. No
 * trials: [0, 1], nothing is known.
 */
export function wilsonInterval(successes: number, n: number, z = Z_95): Interval {
  if (n <= 0) return { low: 0, high: 1 };
  const p = successes / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

export interface ProportionTest {
  /** The first proportion minus the second. */
  difference: number;
  z: number;
  /** Two-sided p-value of "both proportions are equal". */
  p: number;
}

/**
 * The two-proportion z-test with the pooled variance (as R's prop.test without continuity
 * correction, whose X-squared is z²). Null when either group is empty; when the pooled
 * proportion is 0 or 1 the groups cannot differ: z 0, p 1.
 */
export function twoProportionTest(
  successes1: number,
  n1: number,
  successes2: number,
  n2: number,
): ProportionTest | null {
  if (n1 <= 0 || n2 <= 0) return null;
  const p1 = successes1 / n1;
  const p2 = successes2 / n2;
  const pooled = (successes1 + successes2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (!(se > 0)) return { difference: p1 - p2, z: 0, p: 1 };
  const z = (p1 - p2) / se;
  return { difference: p1 - p2, z, p: Math.min(1, erfcNonNegative(Math.abs(z) / Math.SQRT2)) };
}
