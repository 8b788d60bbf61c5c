import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { LONG_FILES, longestFirst } from "../src/sequencer.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

describe("longestFirst", () => {
  it("puts the listed long files first in the list's order, then the rest larger first", () => {
    const sizes: Record<string, number> = { "a.test.ts": 10, "b.test.ts": 30, "c.test.ts": 20 };
    const long = [LONG_FILES[2], LONG_FILES[0]] as string[];
    const order = longestFirst([...Object.keys(sizes), ...long], (p) => sizes[p] ?? 1);
    expect(order).toEqual([LONG_FILES[0], LONG_FILES[2], "b.test.ts", "c.test.ts", "a.test.ts"]);
  });

  it("orders files of one size by path, so two runs agree", () => {
    expect(longestFirst(["z.test.ts", "m.test.ts", "a.test.ts"], () => 5)).toEqual([
      "a.test.ts",
      "m.test.ts",
      "z.test.ts",
    ]);
  });

  it("names only files that exist (a renamed one would silently lose its place)", () => {
    expect(LONG_FILES.filter((p) => !existsSync(resolve(root, p)))).toEqual([]);
    expect(new Set(LONG_FILES).size).toBe(LONG_FILES.length);
  });
});
