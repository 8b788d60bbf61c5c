import { parsePhoneNumberFromString } from "libphonenumber-js/min";
import { nextAllowedTime, resolveZone, type SendWindow, SMS_SEND_HOURS } from "./send-window.js";

/**
 * When each step of a sequence goes out: its raw due time (a start plus its delay) moved into the
 * sequence's send window, read in the lead's zone, and for SMS also into the quiet hours, read in
 * the recipient's zone. The scheduler plans with this; the dispatcher's SMS check reads the same
 * quiet hours and the same zone rule.
 */

/**
 * The one IANA zone of a phone number's country, or null: a national number (no `+`), a number
 * libphonenumber-js does not take for valid, a non-geographic one, or a country with several zones
 * (the US, Australia) says nothing certain. Countries' zones are the runtime's CLDR data.
 */
export function phoneTimeZone(phone: string): string | null {
  const parsed = parsePhoneNumberFromString(phone.trim(), { extract: false });
  if (!parsed?.isValid() || parsed.country === undefined) return null;
  let zone = countryZones.get(parsed.country);
  if (zone === undefined) {
    zone = singleZoneOf(parsed.country);
    countryZones.set(parsed.country, zone);
  }
  return zone;
}

/** A country's one zone (or null), by country: the runtime's answer does not change while it runs. */
const countryZones = new Map<string, string | null>();

function singleZoneOf(country: string): string | null {
  const zones = countryTimeZones(country) ?? [];
  return zones.length === 1 ? zones[0]! : null;
}

/** A country's IANA zones from the runtime's CLDR data (Intl Locale Info), or undefined. */
export function countryTimeZones(country: string): string[] | undefined {
  try {
    // getTimeZones() on newer runtimes, the timeZones getter on Node 20.
    const locale = new Intl.Locale(`und-${country}`) as Intl.Locale & {
      getTimeZones?: () => string[];
      timeZones?: string[];
    };
    const zones = locale.getTimeZones?.() ?? locale.timeZones;
    return Array.isArray(zones) && zones.length > 0 ? [...zones] : undefined;
  } catch {
    return undefined;
  }
}

export interface StepTimeInput {
  /** Seconds from the start (the lead's creation, or a manual enrolment). */
  delay_s: number;
  channel: string;
}

export interface RecipientZones {
  /** The lead's own IANA zone (POST /v1/lead's `timezone`). */
  timezone?: string | undefined;
  /** The zone of the lead's phone number's country, when it has one (phoneTimeZone). */
  phone_timezone?: string | undefined;
}

/** The zones an event carries for a lead (lead.scored, lead.enrolled): never the phone number itself. */
export function recipientZones(lead: { timezone?: string | undefined; phone: string }): {
  timezone?: string;
  phone_timezone?: string;
} {
  const phoneZone = phoneTimeZone(lead.phone);
  return {
    ...(lead.timezone !== undefined ? { timezone: lead.timezone } : {}),
    ...(phoneZone !== null ? { phone_timezone: phoneZone } : {}),
  };
}

export interface PlannedTime {
  due_at: Date;
  /** The raw due time, when a window moved the step. */
  moved_from?: Date;
  /** An SMS step whose quiet hours were read in UTC, no zone of the recipient being known. */
  timezone_assumed?: true;
}

/** Rounds of "into the window, then into the quiet hours" before two zones are taken never to meet. */
const MAX_ROUNDS = 16;

/**
 * The due time of each step, in order; null for a step that can never go out (its windows never
 * open together). A step is never before the previous one. The sequence's window is read in the
 * lead's zone, else its own, else UTC (resolveZone); an SMS step's quiet hours in the lead's zone,
 * else the phone's country's, else the window's, else UTC (then `timezone_assumed`). Both in one
 * zone, they are intersected; in two, the step is moved into one and then the other until it
 * stays. Without a window and without SMS, nothing moves: due is start + delay exactly.
 */
export function sequenceStepTimes(
  start: Date,
  steps: readonly StepTimeInput[],
  window: SendWindow | undefined,
  zones: RecipientZones,
): (PlannedTime | null)[] {
  const windows = window === undefined ? [] : [window];
  const windowZone = resolveZone(zones.timezone, windows).zone;
  const sms = resolveZone(zones.timezone ?? zones.phone_timezone, windows);
  let previousMs = Number.NEGATIVE_INFINITY;
  return steps.map((step) => {
    const rawMs = start.getTime() + Math.round(step.delay_s * 1000);
    const isSms = step.channel === "sms";
    const atMs = isSms
      ? smsTime(Math.max(rawMs, previousMs), window, windowZone, sms.zone)
      : windowTime(Math.max(rawMs, previousMs), windows, windowZone);
    if (atMs === null) return null;
    previousMs = atMs;
    return {
      due_at: new Date(atMs),
      ...(atMs === rawMs ? {} : { moved_from: new Date(rawMs) }),
      ...(isSms && sms.zone_source === "utc" ? { timezone_assumed: true as const } : {}),
    };
  });
}

function windowTime(fromMs: number, windows: readonly SendWindow[], zone: string): number | null {
  if (windows.length === 0) return fromMs;
  return nextAllowedTime(new Date(fromMs), windows, zone).at?.getTime() ?? null;
}

function smsTime(
  fromMs: number,
  window: SendWindow | undefined,
  windowZone: string,
  smsZone: string,
): number | null {
  if (window === undefined || windowZone === smsZone) {
    return windowTime(fromMs, window === undefined ? [SMS_SEND_HOURS] : [window, SMS_SEND_HOURS], smsZone);
  }
  let at: number | null = fromMs;
  for (let round = 0; round < MAX_ROUNDS && at !== null; round++) {
    const inWindow = windowTime(at, [window], windowZone);
    if (inWindow === null) return null;
    const quiet = windowTime(inWindow, [SMS_SEND_HOURS], smsZone);
    if (quiet === inWindow) return quiet;
    at = quiet;
  }
  return null;
}
