/**
 * FOLLOWUP_SCHEDULES: a comma list of delays, each a number with an optional unit
 * (s, m, h, d; none means seconds), decimals allowed: "30m,2h", "1.5h", "15m,1h,120".
 * The order is kept: step i of a lead follows the i-th delay.
 *
 * The system this replaces dropped parts it could not parse; here any bad part is an
 * error that names it, so a typo stops start-up instead of silently losing a follow-up.
 */

export const MAX_DELAY_SECONDS = 365 * 86_400;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
const PART = /^(\d+(?:\.\d+)?)\s*([smhd]?)$/i;

export class ScheduleError extends Error {
  constructor(
    /** The offending part as written (trimmed), and its 1-based position in the list. */
    readonly part: string,
    readonly position: number,
    reason: string,
  ) {
    super(`schedule part ${position} ${JSON.stringify(part)}: ${reason}`);
    this.name = "ScheduleError";
  }
}

/** Parses one delay ("30m", "1.5h", "120") into seconds, rounded to the millisecond. */
export function parseDelay(raw: string, position = 1): number {
  const part = raw.trim();
  if (part === "") {
    throw new ScheduleError(part, position, "empty; expected a delay such as 45s, 30m, 2h, 1d or 120");
  }
  const match = PART.exec(part);
  if (!match) {
    throw new ScheduleError(
      part,
      position,
      "expected a number with an optional unit s, m, h or d (such as 45s, 30m, 1.5h, 1d or 120)",
    );
  }
  const unit = (match[2] ?? "").toLowerCase() || "s";
  const seconds = Math.round(Number(match[1]) * (UNIT_SECONDS[unit] ?? 1) * 1000) / 1000;
  if (seconds <= 0) {
    throw new ScheduleError(part, position, "a delay must be greater than zero");
  }
  if (seconds > MAX_DELAY_SECONDS) {
    throw new ScheduleError(part, position, `a delay may be at most 365 days (${MAX_DELAY_SECONDS} s)`);
  }
  return seconds;
}

/** Parses a whole schedule into delays in seconds, in the order written; "" and blanks give []. */
export function parseSchedules(raw: string): number[] {
  if (raw.trim() === "") return [];
  return raw.split(",").map((part, i) => parseDelay(part, i + 1));
}

/** The strategy name of a delay, as the system it replaces named it: "1800s". */
export function strategyName(delaySeconds: number): string {
  return `${delaySeconds}s`;
}
