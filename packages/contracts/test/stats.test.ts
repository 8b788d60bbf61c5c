import { describe, expect, it } from "vitest";
import { normalCdf, twoProportionTest, wilsonInterval } from "../src/stats.js";

/*
 * Expected values were computed independently of this code, once, with Python 3's math module
 * (libm's erfc, not the approximation under test) and the textbook formulas written out by hand:
 *
 *   wilson:  p = k/n; c = (p + z²/2n) / (1 + z²/n); h = z/(1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)
 *   z-test:  pp = (k1+k2)/(n1+n2); z = (p1-p2) / sqrt(pp(1-pp)(1/n1 + 1/n2)); p = erfc(|z|/sqrt 2)
 *   cdf:     0.5 * erfc(-z / sqrt 2)
 *
 * with z = 1.959963984540054. The interval is exact arithmetic, so it must agree to 1e-12; the
 * p-values and the CDF go through Abramowitz-Stegun 7.1.26, whose error is at most 1.5e-7.
 */

describe("wilsonInterval", () => {
  it.each([
    [0, 10, 0.0, 0.277532799863],
    [10, 10, 0.722467200137, 1.0],
    [5, 10, 0.236593090513, 0.763406909487],
    [1, 3, 0.06149194472, 0.792340399198],
    [81, 263, 0.255288519878, 0.366209576983],
    [120, 1000, 0.101299260601, 0.141609075848],
    [0, 1, 0.0, 0.793450685623],
    [999, 1000, 0.994357441402, 0.999823453629],
  ])("%i of %i", (k, n, low, high) => {
    const interval = wilsonInterval(k, n);
    expect(interval.low).toBeCloseTo(low, 11);
    expect(interval.high).toBeCloseTo(high, 11);
  });

  it("says nothing is known without trials", () => {
    expect(wilsonInterval(0, 0)).toEqual({ low: 0, high: 1 });
  });
});

describe("twoProportionTest", () => {
  it.each([
    [45, 100, 30, 100, 2.190890230021, 2.845973691631e-2],
    [120, 1000, 100, 1000, 1.429300849823, 1.529177818639e-1],
    [10, 50, 10, 50, 0, 1],
    [300, 1000, 200, 1000, 5.163977794943, 2.417563881119e-7],
    [5, 20, 1, 20, 1.77122977108, 7.652250047506e-2],
    [50, 100, 51, 100, -0.141428427835, 8.875314978075e-1],
  ])("%i/%i against %i/%i", (k1, n1, k2, n2, z, p) => {
    const test = twoProportionTest(k1, n1, k2, n2);
    expect(test).not.toBeNull();
    expect(test!.z).toBeCloseTo(z, 10);
    expect(Math.abs(test!.p - p)).toBeLessThanOrEqual(1.5e-7);
    expect(test!.difference).toBeCloseTo(k1 / n1 - k2 / n2, 12);
  });

  it("is null for an empty group, and p 1 when neither or both groups always convert", () => {
    expect(twoProportionTest(1, 10, 0, 0)).toBeNull();
    expect(twoProportionTest(0, 10, 0, 20)).toEqual({ difference: 0, z: 0, p: 1 });
    expect(twoProportionTest(10, 10, 20, 20)).toEqual({ difference: 0, z: 0, p: 1 });
  });
});

describe("normalCdf", () => {
  it.each([
    [-3, 0.001349898032],
    [-1.96, 0.024997895148],
    [-1, 0.158655253931],
    [0, 0.5],
    [0.5, 0.691462461274],
    [1, 0.841344746069],
    [1.644853626951, 0.95],
    [2.5, 0.993790334674],
    [4, 0.999968328758],
  ])("Φ(%d)", (z, expected) => {
    expect(Math.abs(normalCdf(z) - expected)).toBeLessThanOrEqual(7.5e-8);
  });
});
