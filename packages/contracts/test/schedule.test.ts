import { describe, expect, it } from "vitest";
import { MAX_DELAY_SECONDS, parseSchedules, ScheduleError } from "../src/index.js";

describe("parseSchedules", () => {
  // The cases of the system it replaces: these must keep holding.
  it.each([
    ["30m", [1800]],
    ["30m,2h", [1800, 7200]],
    ["1h,1d", [3600, 86400]],
    ["1h,6h,12h", [3600, 21600, 43200]],
    ["1d,3d", [86400, 259200]],
    ["30", [30]],
    ["60,120", [60, 120]],
    ["30m,2h,1d", [1800, 7200, 86400]],
    ["15m,1h,120", [900, 3600, 120]],
    ["", []],
    ["  ", []],
  ])("legacy case %j -> %j", (raw, expected) => {
    expect(parseSchedules(raw)).toEqual(expected);
  });

  it.each([
    ["45s", [45]],
    ["1.5h", [5400]],
    ["0.5m", [30]],
    ["2.5s", [2.5]],
    [" 30m , 2h ", [1800, 7200]],
    ["30M,2H", [1800, 7200]],
    ["10 s", [10]],
    ["365d", [MAX_DELAY_SECONDS]],
    ["2h,30m", [7200, 1800]],
  ])("%j -> %j", (raw, expected) => {
    expect(parseSchedules(raw)).toEqual(expected);
  });

  it.each([
    ["30x", 1, "30x"],
    ["30m,abc", 2, "abc"],
    ["30m,,2h", 2, ""],
    ["30m,2h,", 3, ""],
    ["0", 1, "0"],
    ["0s", 1, "0s"],
    ["-5m", 1, "-5m"],
    ["366d", 1, "366d"],
    ["30m,1e3", 2, "1e3"],
    ["1h30m", 1, "1h30m"],
    [".5h", 1, ".5h"],
    ["5ms", 1, "5ms"],
  ])("%j is an error naming part %i (%j)", (raw, position, part) => {
    let error: unknown;
    try {
      parseSchedules(raw);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ScheduleError);
    const scheduleError = error as ScheduleError;
    expect(scheduleError.position).toBe(position);
    expect(scheduleError.part).toBe(part);
    expect(scheduleError.message).toContain(`part ${position} ${JSON.stringify(part)}`);
  });

  it("explains what it expected", () => {
    expect(() => parseSchedules("soon")).toThrow(/expected a number with an optional unit s, m, h or d/);
    expect(() => parseSchedules("0")).toThrow(/greater than zero/);
    expect(() => parseSchedules("400d")).toThrow(/at most 365 days/);
  });
});
