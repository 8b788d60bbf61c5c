import { describe, expect, it } from "vitest";
import {
  describeIssues,
  intersectWindows,
  nextAllowedTime,
  planStepTimes,
  resolveZone,
  SendWindow,
  type Weekday,
} from "../src/index.js";

const WEEKDAYS_ONLY: Weekday[] = ["mon", "tue", "wed", "thu", "fri"];
const office = SendWindow.parse({ days: WEEKDAYS_ONLY, start: "09:00", end: "18:00" });
const wednesdays = SendWindow.parse({ days: ["wed"], start: "10:00", end: "12:00" });
const sundays = (start: string, end: string) => SendWindow.parse({ days: ["sun"], start, end });

/** `2026-03-09T09:00-04:00`: the wall clock and offset of an instant in a zone, by Intl (not Temporal). */
function local(at: Date, zone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZoneName: "longOffset",
    })
      .formatToParts(at)
      .map((p) => [p.type, p.value]),
  );
  const offset = parts.timeZoneName === "GMT" ? "+00:00" : String(parts.timeZoneName).replace("GMT", "");
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}${offset}`;
}

interface Row {
  name: string;
  zone: string;
  window: SendWindow;
  raw: string;
  /** Expected result; equal to `raw` when the step is inside the window and stays. */
  utc: string;
  local: string;
  why: string;
}

// Each expected time is reasoned from the zone's published rules for 2026, written in `why`;
// `local` is checked through Intl, independently of the library under test.
const rows: Row[] = [
  {
    name: "a Friday-evening step moves to Monday 09:00",
    zone: "America/New_York",
    window: office,
    raw: "2026-06-05T23:30:00.000Z",
    utc: "2026-06-08T13:00:00.000Z",
    local: "2026-06-08T09:00-04:00",
    why: "Fri 19:30 EDT is after 18:00; Sat and Sun are not listed; Mon 09:00 EDT (UTC-4) is 13:00Z",
  },
  {
    name: "a step inside the window is untouched",
    zone: "America/New_York",
    window: office,
    raw: "2026-06-03T14:15:00.000Z",
    utc: "2026-06-03T14:15:00.000Z",
    local: "2026-06-03T10:15-04:00",
    why: "Wed 10:15 EDT is inside Mon-Fri 09:00-18:00",
  },
  {
    name: "a step at the start is inside, one at the end is not",
    zone: "UTC",
    window: office,
    raw: "2026-06-03T18:00:00.000Z",
    utc: "2026-06-04T09:00:00.000Z",
    local: "2026-06-04T09:00+00:00",
    why: "the window is [start, end): Wed 18:00 has closed, Thu 09:00 opens",
  },
  {
    name: "New York: a weekend step lands on Monday in the new offset",
    zone: "America/New_York",
    window: office,
    raw: "2026-03-07T17:00:00.000Z",
    utc: "2026-03-09T13:00:00.000Z",
    local: "2026-03-09T09:00-04:00",
    why: "Sat 12:00 EST (UTC-5); clocks go 02:00 EST -> 03:00 EDT on Sun 2026-03-08, so Mon 09:00 is EDT, 13:00Z (14:00Z if Saturday's offset were added)",
  },
  {
    name: "New York spring-forward: a window opening in the gap opens when the clock jumps",
    zone: "America/New_York",
    window: sundays("02:30", "05:00"),
    raw: "2026-03-08T06:30:00.000Z",
    utc: "2026-03-08T07:00:00.000Z",
    local: "2026-03-08T03:00-04:00",
    why: "01:30 EST; 02:00-03:00 does not exist on 2026-03-08: at 07:00Z the clock reads 03:00 EDT, already past 02:30",
  },
  {
    name: "New York fall-back: a window opening in the repeated hour opens at its first 01:30",
    zone: "America/New_York",
    window: sundays("01:30", "03:00"),
    raw: "2026-11-01T04:30:00.000Z",
    utc: "2026-11-01T05:30:00.000Z",
    local: "2026-11-01T01:30-04:00",
    why: "00:30 EDT; 01:00-02:00 happens twice on 2026-11-01 (EDT, then EST from 06:00Z); the first 01:30 is EDT, 05:30Z",
  },
  {
    name: "New York fall-back: inside during the second pass of the repeated hour",
    zone: "America/New_York",
    window: sundays("01:30", "03:00"),
    raw: "2026-11-01T06:45:00.000Z",
    utc: "2026-11-01T06:45:00.000Z",
    local: "2026-11-01T01:45-05:00",
    why: "06:45Z is 01:45 EST (the second 01:45), inside 01:30-03:00",
  },
  {
    name: "New York fall-back: the repeated hour reopens a window that had closed",
    zone: "America/New_York",
    window: sundays("00:00", "01:30"),
    raw: "2026-11-01T05:40:00.000Z",
    utc: "2026-11-01T06:00:00.000Z",
    local: "2026-11-01T01:00-05:00",
    why: "01:40 EDT is past 01:30; at 06:00Z the clock falls back to 01:00 EST, inside again",
  },
  {
    name: "New York fall-back: a start in the repeated hour, reached again in its second pass",
    zone: "America/New_York",
    window: sundays("01:30", "01:45"),
    raw: "2026-11-01T05:50:00.000Z",
    utc: "2026-11-01T06:30:00.000Z",
    local: "2026-11-01T01:30-05:00",
    why: "01:50 EDT is past 01:45; after the fall-back at 06:00Z (01:00 EST) the clock reaches 01:30 again at 06:30Z",
  },
  {
    name: "London spring-forward: Friday evening to Monday in BST",
    zone: "Europe/London",
    window: office,
    raw: "2026-03-27T18:30:00.000Z",
    utc: "2026-03-30T08:00:00.000Z",
    local: "2026-03-30T09:00+01:00",
    why: "Fri 18:30 GMT; clocks go 01:00 GMT -> 02:00 BST on Sun 2026-03-29; Mon 09:00 BST (UTC+1) is 08:00Z",
  },
  {
    name: "London spring-forward: a window wholly inside the gap waits a week",
    zone: "Europe/London",
    window: sundays("01:00", "02:00"),
    raw: "2026-03-29T00:30:00.000Z",
    utc: "2026-04-05T00:00:00.000Z",
    local: "2026-04-05T01:00+01:00",
    why: "01:00-02:00 does not exist on Sun 2026-03-29 (01:00Z is 02:00 BST); next Sunday 01:00 BST is 00:00Z",
  },
  {
    name: "London fall-back: Friday evening to Monday in GMT",
    zone: "Europe/London",
    window: office,
    raw: "2026-10-23T19:00:00.000Z",
    utc: "2026-10-26T09:00:00.000Z",
    local: "2026-10-26T09:00+00:00",
    why: "Fri 20:00 BST; clocks go 02:00 BST -> 01:00 GMT on Sun 2026-10-25; Mon 09:00 GMT is 09:00Z",
  },
  {
    name: "Sydney, end of DST: Friday evening to Monday in AEST",
    zone: "Australia/Sydney",
    window: office,
    raw: "2026-04-03T08:00:00.000Z",
    utc: "2026-04-05T23:00:00.000Z",
    local: "2026-04-06T09:00+10:00",
    why: "Fri 19:00 AEDT (UTC+11); clocks go 03:00 AEDT -> 02:00 AEST on Sun 2026-04-05; Mon 09:00 AEST is Sun 23:00Z",
  },
  {
    name: "Sydney, start of DST: Friday evening to Monday in AEDT",
    zone: "Australia/Sydney",
    window: office,
    raw: "2026-10-02T09:00:00.000Z",
    utc: "2026-10-04T22:00:00.000Z",
    local: "2026-10-05T09:00+11:00",
    why: "Fri 19:00 AEST (UTC+10); clocks go 02:00 AEST -> 03:00 AEDT on Sun 2026-10-04; Mon 09:00 AEDT is Sun 22:00Z",
  },
  {
    name: "Kathmandu (+05:45): an early step waits for 09:00 the same day",
    zone: "Asia/Kathmandu",
    window: office,
    raw: "2026-06-02T02:00:00.000Z",
    utc: "2026-06-02T03:15:00.000Z",
    local: "2026-06-02T09:00+05:45",
    why: "Nepal is UTC+05:45 all year: 02:00Z is Tue 07:45; 09:00 is 03:15Z",
  },
  {
    name: "Lord Howe, start of DST: the 30-minute gap opens a window at 02:30",
    zone: "Australia/Lord_Howe",
    window: sundays("02:00", "03:00"),
    raw: "2026-10-03T15:15:00.000Z",
    utc: "2026-10-03T15:30:00.000Z",
    local: "2026-10-04T02:30+11:00",
    why: "Sun 01:45 LHST (UTC+10:30); clocks go 02:00 -> 02:30 (UTC+11) on 2026-10-04 at 15:30Z, inside 02:00-03:00",
  },
  {
    name: "Lord Howe, end of DST: Friday evening to Monday at +10:30",
    zone: "Australia/Lord_Howe",
    window: office,
    raw: "2026-04-03T07:30:00.000Z",
    utc: "2026-04-05T22:30:00.000Z",
    local: "2026-04-06T09:00+10:30",
    why: "Fri 18:30 LHDT (UTC+11); clocks go 02:00 -> 01:30 (UTC+10:30) on Sun 2026-04-05; Mon 09:00 is Sun 22:30Z",
  },
  {
    name: "a window on one weekday only: past it, the next week's",
    zone: "Europe/Paris",
    window: wednesdays,
    raw: "2026-06-03T10:30:00.000Z",
    utc: "2026-06-10T08:00:00.000Z",
    local: "2026-06-10T10:00+02:00",
    why: "Wed 12:30 CEST (UTC+2) is past 12:00; the next Wednesday 10:00 CEST is 08:00Z",
  },
  {
    name: "a window on one weekday only: before it, the same week's",
    zone: "Europe/Paris",
    window: wednesdays,
    raw: "2026-06-01T10:30:00.000Z",
    utc: "2026-06-03T08:00:00.000Z",
    local: "2026-06-03T10:00+02:00",
    why: "Mon 12:30 CEST; Wednesday 10:00 CEST of the same week is 08:00Z",
  },
];

describe("nextAllowedTime", () => {
  it.each(rows)("$name ($zone)", (row) => {
    const raw = new Date(row.raw);
    const result = nextAllowedTime(raw, row.window, row.zone);
    expect(result.zone).toBe(row.zone);
    expect(result.zone_source).toBe("lead");
    expect(result.at?.toISOString(), row.why).toBe(row.utc);
    expect(local(result.at!, row.zone), row.why).toBe(row.local);
    if (row.utc === row.raw) expect(result.moved_from).toBeUndefined();
    else expect(result.moved_from).toEqual(raw);
  });

  it("an unknown lead zone falls back to the window's, and the result says so", () => {
    const window = SendWindow.parse({ ...office, timezone: "America/New_York" });
    const result = nextAllowedTime(new Date("2026-06-05T23:30:00Z"), window, "Mars/Olympus");
    expect(result).toMatchObject({ zone: "America/New_York", zone_source: "window" });
    expect(result.at?.toISOString()).toBe("2026-06-08T13:00:00.000Z");
  });

  it("with no zone anywhere it reads the window in UTC", () => {
    const result = nextAllowedTime(new Date("2026-06-05T23:30:00Z"), office, "Not/AZone");
    expect(result).toMatchObject({ zone: "UTC", zone_source: "utc" });
    expect(result.at?.toISOString()).toBe("2026-06-08T09:00:00.000Z");
  });

  it("the lead's own zone wins over the window's", () => {
    const window = SendWindow.parse({ ...office, timezone: "America/New_York" });
    const result = nextAllowedTime(new Date("2026-06-05T23:30:00Z"), window, "Asia/Kathmandu");
    expect(result).toMatchObject({ zone: "Asia/Kathmandu", zone_source: "lead" });
    // Sat 05:15 in Kathmandu -> Mon 09:00 +05:45 = Mon 03:15Z.
    expect(result.at?.toISOString()).toBe("2026-06-08T03:15:00.000Z");
  });

  it("no window leaves every time as it is", () => {
    const raw = new Date("2026-06-06T03:00:00Z");
    expect(nextAllowedTime(raw, [], "Europe/Paris")).toEqual({
      at: raw,
      zone: "Europe/Paris",
      zone_source: "lead",
    });
  });
});

describe("intersecting windows (SMS quiet hours)", () => {
  const quietHours = SendWindow.parse({ start: "08:00", end: "21:00" });

  it("the tighter of two windows applies", () => {
    const evenings = SendWindow.parse({ days: ["mon", "tue"], start: "17:00", end: "23:00" });
    expect(intersectWindows([evenings, quietHours])).toEqual({
      days: ["mon", "tue"],
      start: "17:00",
      end: "21:00",
    });
    // Mon 21:30 in New York is outside the quiet hours though inside the evenings: Tue 17:00 EDT.
    const result = nextAllowedTime(
      new Date("2026-06-02T01:30:00Z"),
      [evenings, quietHours],
      "America/New_York",
    );
    expect(result.at?.toISOString()).toBe("2026-06-02T21:00:00.000Z");
  });

  it("windows that never open together say so", () => {
    const late = SendWindow.parse({ start: "22:00", end: "23:00" });
    expect(intersectWindows([late, quietHours])).toBeNull();
    expect(nextAllowedTime(new Date("2026-06-02T01:30:00Z"), [late, quietHours], "UTC").at).toBeNull();
    const weekend = SendWindow.parse({ days: ["sat", "sun"], start: "09:00", end: "18:00" });
    expect(intersectWindows([weekend, office])).toBeNull();
  });

  it("the zone of the intersection is the first window's", () => {
    const a = SendWindow.parse({ ...office, timezone: "Europe/London" });
    const b = SendWindow.parse({ ...quietHours, timezone: "Asia/Tokyo" });
    expect(intersectWindows([a, b])?.timezone).toBe("Europe/London");
    expect(resolveZone(undefined, [quietHours, b])).toEqual({ zone: "Asia/Tokyo", zone_source: "window" });
  });
});

describe("planStepTimes", () => {
  const created = new Date("2026-06-05T21:00:00Z"); // Fri 17:00 in New York

  it("moves what falls outside and never puts a step before the previous one", () => {
    // 30m: Fri 17:30 EDT, inside. 2h: Fri 19:00, out -> Mon 09:00. 1d: Sat 17:00 -> Mon 09:00.
    const plan = planStepTimes(created, [1800, 7200, 86_400], [office], "America/New_York");
    expect(plan.zone).toBe("America/New_York");
    expect(plan.steps?.map((s) => [s.step, s.at.toISOString(), s.moved_from?.toISOString()])).toEqual([
      [1, "2026-06-05T21:30:00.000Z", undefined],
      [2, "2026-06-08T13:00:00.000Z", "2026-06-05T23:00:00.000Z"],
      [3, "2026-06-08T13:00:00.000Z", "2026-06-06T21:00:00.000Z"],
    ]);
  });

  it("under a window a shorter later delay waits for the previous step", () => {
    const plan = planStepTimes(created, [7200, 1800], [office], "America/New_York");
    expect(plan.steps?.map((s) => s.at.toISOString())).toEqual([
      "2026-06-08T13:00:00.000Z",
      "2026-06-08T13:00:00.000Z",
    ]);
    expect(plan.steps?.[1]?.moved_from?.toISOString()).toBe("2026-06-05T21:30:00.000Z");
  });

  it("without a window every step keeps its raw due time, in the schedule's order", () => {
    const plan = planStepTimes(created, [7200, 1800], [], "America/New_York");
    expect(plan.steps?.map((s) => [s.at.toISOString(), s.moved_from])).toEqual([
      ["2026-06-05T23:00:00.000Z", undefined],
      ["2026-06-05T21:30:00.000Z", undefined],
    ]);
  });

  it("has no steps when the windows never open together", () => {
    const late = SendWindow.parse({ start: "22:00", end: "23:00" });
    const quiet = SendWindow.parse({ start: "08:00", end: "21:00" });
    expect(planStepTimes(created, [1800], [late, quiet], "UTC")).toEqual({
      zone: "UTC",
      zone_source: "lead",
      steps: null,
    });
  });
});

describe("SendWindow validation", () => {
  function failingPaths(input: unknown): string[] {
    const result = SendWindow.safeParse(input);
    return result.success ? [] : describeIssues(result.error).map((i) => i.path);
  }

  it("defaults to every day", () => {
    expect(SendWindow.parse({ start: "08:00", end: "24:00" }).days).toHaveLength(7);
  });

  it.each([
    [{ start: "18:00", end: "09:00" }, ["end"], "must be after start (18:00)"],
    [{ start: "09:00", end: "09:00" }, ["end"], "must be after start"],
    [{ start: "9:00", end: "18:00" }, ["start"], "HH:MM"],
    [{ start: "24:00", end: "24:00" }, ["start"], "HH:MM"],
    [{ start: "09:00", end: "18:60" }, ["end"], "HH:MM"],
    [{ start: "09:00", end: "18:00", timezone: "Mars/Olympus" }, ["timezone"], "IANA time zone"],
    [{ start: "09:00", end: "18:00", timezone: "+05:45" }, ["timezone"], "IANA time zone"],
    [{ start: "09:00", end: "18:00", days: ["mon", "funday"] }, ["days.1"], "must be one of mon, tue"],
    [{ start: "09:00", end: "18:00", days: [] }, ["days"], "at least one weekday"],
    [{ start: "09:00", end: "18:00", days: ["mon", "mon"] }, ["days"], "at most once"],
    [{ start: "09:00", end: "18:00", hours: 3 }, ["(root)"], "hours"],
  ])("%j fails on %j", (input, paths, message) => {
    expect(failingPaths(input)).toEqual(paths);
    const result = SendWindow.safeParse(input);
    expect(result.success ? "" : describeIssues(result.error)[0]?.message).toContain(message);
  });
});
