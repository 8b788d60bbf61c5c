import { Temporal } from "temporal-polyfill";
import { z } from "zod";

/**
 * Send windows: the local hours of the week in which a follow-up may go out. A step due outside
 * them moves to the next moment they open; the scheduler plans with this, the dispatcher (SMS quiet
 * hours) checks with it, so both read the same function.
 *
 * Time-zone arithmetic is Temporal's (the temporal-polyfill package until Node ships Temporal):
 * a local time is turned into an instant by the zone's rules, never by adding an offset, so a
 * window opening inside a spring-forward gap or a repeated fall-back hour still lands right.
 */

export const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export const Weekday = z.enum(WEEKDAYS, { error: `must be one of ${WEEKDAYS.join(", ")}` });
export type Weekday = z.infer<typeof Weekday>;

/** An IANA zone name the runtime knows. Fixed offsets ("+05:45") are not names and are refused. */
export function isKnownTimeZone(zone: string): boolean {
  return canonicalZone(zone) !== null;
}

/** The zone as Temporal spells it ("america/new_york" -> "America/New_York"), or null if unknown. */
function canonicalZone(zone: string): string | null {
  if (zone === "" || zone.length > 64 || /^[+-]/.test(zone)) return null;
  try {
    return Temporal.Instant.fromEpochMilliseconds(0).toZonedDateTimeISO(zone).timeZoneId;
  } catch {
    return null;
  }
}

const HH_MM = /^([01]\d|2[0-3]):[0-5]\d$/;
const TIME_RULE = "must be a time of day HH:MM, 00:00 to 23:59";

/** Minutes after local midnight of "HH:MM" ("24:00", allowed as an end only, is 1440). */
function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(":");
  return Number(h) * 60 + Number(m);
}

function formatMinutes(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
}

/**
 * Open from `start` (inclusive) to `end` (exclusive) local time on each of `days`. A window does
 * not cross midnight (end after start; "24:00" closes it at the end of the day), so every window
 * is one interval per listed day, and the intersection of windows is again a window.
 */
export const SendWindow = z
  .strictObject({
    /** Used when the lead has no (known) zone of its own; UTC when this is absent too. */
    timezone: z
      .string()
      .refine(isKnownTimeZone, { message: "must be an IANA time zone such as America/New_York" })
      .optional(),
    days: z
      .array(Weekday)
      .min(1, "must list at least one weekday")
      .refine((days) => new Set(days).size === days.length, {
        message: "must list each weekday at most once",
      })
      .default([...WEEKDAYS]),
    start: z.string().regex(HH_MM, TIME_RULE),
    end: z
      .string()
      .regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, `${TIME_RULE}, or 24:00 for the end of the day`),
  })
  .superRefine((w, ctx) => {
    if (HH_MM.test(w.start) && minutesOf(w.end) <= minutesOf(w.start)) {
      ctx.addIssue({
        code: "custom",
        path: ["end"],
        message: `must be after start (${w.start}); a window cannot cross midnight`,
      });
    }
  })
  .meta({ id: "SendWindow", description: "Local hours of the week in which follow-ups may be sent" });
export type SendWindow = z.output<typeof SendWindow>;

/**
 * The hours open in every one of `windows` (the tighter of a sequence's window and SMS quiet hours,
 * say): the common days, the latest start, the earliest end. Null when they never open together.
 * An empty list is no restriction, returned as a window open all week. The zone is the first one
 * given: windows are always read in one zone, the lead's (see resolveZone).
 */
export function intersectWindows(windows: readonly SendWindow[]): SendWindow | null {
  let days: readonly Weekday[] = WEEKDAYS;
  let start = 0;
  let end = 24 * 60;
  let timezone: string | undefined;
  for (const w of windows) {
    days = days.filter((d) => w.days.includes(d));
    start = Math.max(start, minutesOf(w.start));
    end = Math.min(end, minutesOf(w.end));
    timezone ??= w.timezone;
  }
  if (days.length === 0 || end <= start) return null;
  return {
    ...(timezone === undefined ? {} : { timezone }),
    days: [...days],
    start: formatMinutes(start),
    end: formatMinutes(end),
  };
}

/** Where the zone a window was read in came from: the lead's own, the window's, or neither (UTC). */
export type ZoneSource = "lead" | "window" | "utc";

/** The lead's zone if it is a known IANA zone, else the first window's, else UTC. */
export function resolveZone(
  leadZone: string | null | undefined,
  windows: readonly SendWindow[],
): { zone: string; zone_source: ZoneSource } {
  const own = leadZone == null ? null : canonicalZone(leadZone);
  if (own !== null) return { zone: own, zone_source: "lead" };
  for (const w of windows) {
    const fallback = w.timezone === undefined ? null : canonicalZone(w.timezone);
    if (fallback !== null) return { zone: fallback, zone_source: "window" };
  }
  return { zone: "UTC", zone_source: "utc" };
}

export interface AllowedTime {
  /** The first moment at or after the raw time when every window is open; null if they never open together. */
  at: Date | null;
  /** The raw time, when `at` differs from it. */
  moved_from?: Date;
  /** The IANA zone the windows were read in, and where it came from (`lead` unless it fell back). */
  zone: string;
  zone_source: ZoneSource;
}

const DAY_MS = 86_400_000;
/** Far enough to pass a whole week even when a zone transition swallows a one-day window's hours. */
const SEARCH_DAYS = 15;

/**
 * The next moment at or after `rawDue` that lies inside every window, read in the lead's zone
 * (resolveZone). A time inside is returned unchanged; one outside moves to the moment the windows
 * next open: a window's start on a listed day, or the instant a zone transition carries the local
 * clock into the window (a fall-back hour that repeats it).
 */
export function nextAllowedTime(
  rawDue: Date,
  windows: SendWindow | readonly SendWindow[],
  leadZone?: string | null,
): AllowedTime {
  const list: readonly SendWindow[] = Array.isArray(windows) ? windows : [windows as SendWindow];
  const { zone, zone_source } = resolveZone(leadZone, list);
  if (list.length === 0) return { at: rawDue, zone, zone_source };
  const open = intersectWindows(list);
  if (open === null) return { at: null, zone, zone_source };
  const at = firstOpenInstant(rawDue.getTime(), open, zone);
  return at === rawDue.getTime()
    ? { at: rawDue, zone, zone_source }
    : { at: new Date(at), moved_from: rawDue, zone, zone_source };
}

function isOpenAt(epochMs: number, w: SendWindow, zone: string): boolean {
  const local = Temporal.Instant.fromEpochMilliseconds(epochMs).toZonedDateTimeISO(zone);
  if (!w.days.includes(WEEKDAYS[local.dayOfWeek - 1]!)) return false;
  const msOfDay = ((local.hour * 60 + local.minute) * 60 + local.second) * 1000 + local.millisecond;
  return msOfDay >= minutesOf(w.start) * 60_000 && msOfDay < minutesOf(w.end) * 60_000;
}

/**
 * Openness only changes where the local clock reaches a start or jumps (a zone transition), so the
 * first open instant is the earliest of those candidates that is open. A start inside a gap resolves
 * to the first instant after it ("compatible"); a start in a repeated hour gives both instants.
 * Starts are made day by day, in time order, and the search ends at the first open one: the zone
 * arithmetic is the cost, and most steps are settled by the next listed day's start.
 */
function firstOpenInstant(fromMs: number, w: SendWindow, zone: string): number {
  if (isOpenAt(fromMs, w, zone)) return fromMs;
  const from = Temporal.Instant.fromEpochMilliseconds(fromMs).toZonedDateTimeISO(zone);
  const untilMs = fromMs + SEARCH_DAYS * DAY_MS;
  const transitions: number[] = [];
  for (let t = from.getTimeZoneTransition("next"); t !== null; t = t.getTimeZoneTransition("next")) {
    if (t.epochMilliseconds > untilMs) break;
    transitions.push(t.epochMilliseconds);
  }
  const startMinutes = minutesOf(w.start);
  const startTime = new Temporal.PlainTime(Math.floor(startMinutes / 60), startMinutes % 60);
  const firstDate = from.toPlainDate();
  for (let d = 0; d <= SEARCH_DAYS; d++) {
    const date = firstDate.add({ days: d });
    if (!w.days.includes(WEEKDAYS[date.dayOfWeek - 1]!)) continue;
    const local = date.toPlainDateTime(startTime);
    for (const disambiguation of ["compatible", "later"] as const) {
      const startMs = local.toZonedDateTime(zone, { disambiguation }).epochMilliseconds;
      if (startMs <= fromMs) continue;
      // A transition before this start may open the window first (a repeated hour).
      while (transitions.length > 0 && transitions[0]! <= startMs) {
        const t = transitions.shift()!;
        if (t > fromMs && isOpenAt(t, w, zone)) return t;
      }
      if (isOpenAt(startMs, w, zone)) return startMs;
    }
  }
  // Unreachable for a valid window: every listed weekday recurs twice within the search.
  throw new Error(`send window never opened within ${SEARCH_DAYS} days in ${zone}`);
}

export interface StepTime {
  step: number;
  /** Lead creation plus the step's delay. */
  raw_due: Date;
  /** When the step may go out. */
  at: Date;
  /** The raw due time, when `at` differs from it. */
  moved_from?: Date;
}

export interface StepTimes {
  zone: string;
  zone_source: ZoneSource;
  /** Null when the windows never open together: no step can be sent. */
  steps: StepTime[] | null;
}

/**
 * When each step (numbered from 1, delays in seconds from the lead's creation) may go out. Under a
 * window a step is never before the previous one, even if its delay is shorter; without one
 * nothing moves, so the built-in sequence keeps today's due times exactly (FOLLOWUP_SCHEDULES
 * may list delays in any order, and step i is due at the i-th).
 */
export function planStepTimes(
  createdAt: Date,
  delaysSeconds: readonly number[],
  windows: readonly SendWindow[],
  leadZone?: string | null,
): StepTimes {
  const { zone, zone_source } = resolveZone(leadZone, windows);
  const open = windows.length === 0 ? null : intersectWindows(windows);
  if (windows.length > 0 && open === null) return { zone, zone_source, steps: null };
  const steps: StepTime[] = [];
  let previousMs = Number.NEGATIVE_INFINITY;
  delaysSeconds.forEach((delay, i) => {
    const rawMs = createdAt.getTime() + Math.round(delay * 1000);
    const atMs = open === null ? rawMs : firstOpenInstant(Math.max(rawMs, previousMs), open, zone);
    previousMs = atMs;
    const raw_due = new Date(rawMs);
    steps.push(
      atMs === rawMs
        ? { step: i + 1, raw_due, at: raw_due }
        : { step: i + 1, raw_due, at: new Date(atMs), moved_from: raw_due },
    );
  });
  return { zone, zone_source, steps };
}

/**
 * SMS is sent only from 08:00 to 21:00 in the recipient's local time, whatever a sequence's
 * window says (the tighter of the two applies): the scheduler plans with it, the dispatcher holds
 * a retry that would land outside it until the next opening.
 */
export const SMS_SEND_HOURS: SendWindow = { days: [...WEEKDAYS], start: "08:00", end: "21:00" };
