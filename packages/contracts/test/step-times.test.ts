import { describe, expect, it } from "vitest";
import { planStepTimes, type SendWindow } from "../src/send-window.js";
import { phoneTimeZone, recipientZones, sequenceStepTimes } from "../src/step-times.js";

const WEEKDAYS_9_TO_18: SendWindow = {
  timezone: "America/New_York",
  days: ["mon", "tue", "wed", "thu", "fri"],
  start: "09:00",
  end: "18:00",
};

describe("phoneTimeZone", () => {
  it("gives the zone of a country with one, and nothing for several zones, national or invalid numbers", () => {
    expect(phoneTimeZone("+33 1 42 68 53 00")).toBe("Europe/Paris");
    expect(phoneTimeZone("+44 20 7946 0958")).toBe("Europe/London");
    expect(phoneTimeZone("+1 415 555 2671")).toBeNull();
    // Germany has two in CLDR (Europe/Berlin and Europe/Busingen): nothing certain.
    expect(phoneTimeZone("+49 30 901820")).toBeNull();
    expect(phoneTimeZone("030 901820")).toBeNull();
    expect(phoneTimeZone("+49 1")).toBeNull();
  });

  it("puts zones, never the number, into what an event carries", () => {
    expect(recipientZones({ phone: "+33 1 42 68 53 00", timezone: "Asia/Tokyo" })).toEqual({
      timezone: "Asia/Tokyo",
      phone_timezone: "Europe/Paris",
    });
    expect(recipientZones({ phone: "+1 415 555 2671" })).toEqual({});
  });
});

describe("sequenceStepTimes", () => {
  // Friday 2026-03-06 22:30 UTC = 17:30 in New York (EST), 23:30 in Berlin.
  const start = new Date("2026-03-06T22:30:00Z");

  it("agrees with planStepTimes when no step is SMS", () => {
    const delays = [60, 3600, 7200];
    const times = sequenceStepTimes(
      start,
      delays.map((delay_s) => ({ delay_s, channel: "email" })),
      WEEKDAYS_9_TO_18,
      {},
    );
    const expected = planStepTimes(start, delays, [WEEKDAYS_9_TO_18]).steps!;
    expect(times.map((t) => t?.due_at.toISOString())).toEqual(expected.map((s) => s.at.toISOString()));
    expect(times.map((t) => t?.moved_from?.toISOString())).toEqual(
      expected.map((s) => s.moved_from?.toISOString()),
    );
  });

  it("moves nothing without a window and without SMS", () => {
    expect(sequenceStepTimes(start, [{ delay_s: 90, channel: "hook" }], undefined, {})).toEqual([
      { due_at: new Date(start.getTime() + 90_000) },
    ]);
  });

  it("reads an SMS step's quiet hours in the phone's zone and the window in the window's, until both hold", () => {
    // One hour later: 18:30 New York (window closed), so Monday 09:00 New York (EDT since Sunday)
    // = 13:00 UTC = 14:00 Berlin, inside Berlin's 08:00-21:00.
    const [sms] = sequenceStepTimes(start, [{ delay_s: 3600, channel: "sms" }], WEEKDAYS_9_TO_18, {
      phone_timezone: "Europe/Berlin",
    });
    expect(sms?.due_at.toISOString()).toBe("2026-03-09T13:00:00.000Z");
    expect(sms?.timezone_assumed).toBeUndefined();
  });

  it("finds a moment both allow when the window and the recipient's quiet hours are in two zones", () => {
    // Monday 06:00 New York (EDT) is 19:00 in Tokyo: inside both.
    const window: SendWindow = { ...WEEKDAYS_9_TO_18, start: "06:00", end: "12:00" };
    const [sms] = sequenceStepTimes(start, [{ delay_s: 60, channel: "sms" }], window, {
      phone_timezone: "Asia/Tokyo",
    });
    const at = sms!.due_at;
    const ny = new Intl.DateTimeFormat("en-GB", {
      timeZone: "America/New_York",
      weekday: "short",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    }).format(at);
    const tokyo = Number(
      new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Tokyo", hour: "2-digit", hourCycle: "h23" }).format(
        at,
      ),
    );
    expect(ny).toBe("Mon 06:00");
    expect(tokyo).toBeGreaterThanOrEqual(8);
    expect(tokyo).toBeLessThan(21);
  });

  it("moves an SMS step on from a window opening that is night for the recipient, to a moment both allow", () => {
    // Monday 09:00 New York (EDT) is 00:00 Tuesday in Sydney (AEDT, +11); Sydney's 08:00 is 17:00
    // in New York, still inside the window.
    const [sms] = sequenceStepTimes(start, [{ delay_s: 3600, channel: "sms" }], WEEKDAYS_9_TO_18, {
      phone_timezone: "Australia/Sydney",
    });
    expect(sms?.due_at.toISOString()).toBe("2026-03-09T21:00:00.000Z");
    // Tokyo's 08:00-21:00 is New York's 19:00-08:00 (EDT): the two never meet.
    expect(
      sequenceStepTimes(start, [{ delay_s: 3600, channel: "sms" }], WEEKDAYS_9_TO_18, {
        phone_timezone: "Asia/Tokyo",
      }),
    ).toEqual([null]);
  });

  it("says timezone_assumed for an SMS step when no zone of the recipient is known", () => {
    const [sms] = sequenceStepTimes(start, [{ delay_s: 60, channel: "sms" }], undefined, {});
    // 22:31 UTC is after 21:00 UTC: the next morning, 08:00 UTC.
    expect(sms).toEqual({
      due_at: new Date("2026-03-07T08:00:00Z"),
      moved_from: new Date(start.getTime() + 60_000),
      timezone_assumed: true,
    });
  });

  it("gives null for a step whose window and quiet hours never meet in one zone", () => {
    const night: SendWindow = { days: ["mon"], start: "22:00", end: "23:00" };
    expect(sequenceStepTimes(start, [{ delay_s: 60, channel: "sms" }], night, {})).toEqual([null]);
  });
});
