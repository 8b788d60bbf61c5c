import { isoNow } from "@followup/contracts";
import { type Logger, type LoggerOptions, pino } from "pino";

export type { Logger } from "pino";

/**
 * Paths pino censors wherever they appear: credentials never reach a log line. Personal
 * data is masked by the code that logs it (maskPhone, maskEmail), so logs stay useful.
 */
export const REDACTED_PATHS = [
  "apiKey",
  "api_key",
  "secret",
  "password",
  "token",
  "*.apiKey",
  "*.api_key",
  "*.secret",
  "*.password",
  "*.token",
  'req.headers["x-api-key"]',
  "req.headers.authorization",
  'req.headers["webhook-signature"]',
  'headers["x-api-key"]',
  "headers.authorization",
  'headers["webhook-signature"]',
];

/** The one logger factory: pino JSON on stdout, with the service's name on every line. */
export function createLogger(options: {
  service: string;
  level?: string;
  destination?: pino.DestinationStream;
}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? "info",
    base: { service: options.service, pid: process.pid },
    // pino's isoTime, with the date formatted once per millisecond (a line per lead of a batch).
    timestamp: () => `,"time":"${isoNow()}"`,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    formatters: { level: (label) => ({ level: label }) },
  };
  return pino(config, options.destination ?? linesTogether(stdoutDestination()));
}

/**
 * The redaction of a line whose fields are all flat (strings, numbers, arrays of them): the
 * top-level paths of REDACTED_PATHS only. pino runs every field of a line through each wildcard
 * path (`*.token`), which cost a per-lead line more than writing it; a flat line has no nested
 * field for those paths to find, and a top-level credential is still censored.
 */
const FLAT_REDACTED_PATHS = REDACTED_PATHS.filter((path) => /^[A-Za-z_]+$/.test(path));

/** A logger for hot lines with flat fields only (see FLAT_REDACTED_PATHS); make it once, not per line. */
export function flatLineLogger(logger: Logger): Logger {
  return logger.child({}, { redact: { paths: FLAT_REDACTED_PATHS, censor: "[redacted]" } });
}

/**
 * Runs `log` (synchronous) and writes the lines it logged as one write when it returns: a line
 * per lead of a batch then costs one write of the batch instead of a syscall each. The lines and
 * their order are the same; they are only held for the duration of the call. Only a destination
 * made by linesTogether (createLogger's stdout) is written to that way; any other is given one
 * line per write as pino does, and this only runs `log`.
 */
export function logTogether<T>(logger: Logger, log: () => T): T {
  const held = heldLinesOf(logger);
  return held === null ? log() : held.together(log);
}

/**
 * Holds the lines logged from now until the event loop's turn ends (setImmediate) and writes
 * them as one write then: for lines that come from many continuations of one event (the
 * dispatcher's `followup_executed` lines of a committed result batch, one per follow-up), which
 * logTogether cannot wrap. A line is held for less than a turn; an exit writes what is held
 * (pino's flushSync). Only a destination made by linesTogether holds lines; any other is left as it is.
 */
export function holdLinesForTurn(logger: Logger): void {
  heldLinesOf(logger)?.holdForTurn();
}

/** The logger's destination when linesTogether made it (pino keeps it under streamSym), else null. */
function heldLinesOf(logger: Logger): HeldLines | null {
  const destination = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  return destination instanceof HeldLines ? destination : null;
}

/** `destination`, taking the lines held by logTogether as one write (several lines in it). */
export function linesTogether(destination: pino.DestinationStream): pino.DestinationStream {
  return new HeldLines(destination);
}

class HeldLines implements pino.DestinationStream {
  private held: string[] | null = null;
  constructor(private readonly destination: pino.DestinationStream) {}

  write(line: string): void {
    if (this.held !== null) this.held.push(line);
    else this.destination.write(line);
  }

  together<T>(log: () => T): T {
    if (this.held !== null) return log();
    this.held = [];
    try {
      return log();
    } finally {
      this.writeHeld();
    }
  }

  holdForTurn(): void {
    if (this.held !== null) return;
    this.held = [];
    setImmediate(() => this.writeHeld());
  }

  private writeHeld(): void {
    const lines = this.held;
    this.held = null;
    if (lines !== null && lines.length > 0) this.destination.write(lines.join(""));
  }

  /** pino's logger.flush() reaches the destination through these. */
  flush(cb?: (err?: Error) => void): void {
    this.writeHeld();
    const flush = (this.destination as { flush?: (cb?: (err?: Error) => void) => void }).flush;
    if (flush) flush.call(this.destination, cb);
    else cb?.();
  }

  flushSync(): void {
    this.writeHeld();
    (this.destination as { flushSync?: () => void }).flushSync?.();
  }
}

/**
 * Synchronous writes to stdout that stop (instead of spinning) once the reader is gone. pino's
 * default asynchronous destination flushes on exit and, on EPIPE, retries forever (sonic-boom
 * 4.2 retries every write error in flushSync), so a service whose supervisor died would hang in
 * process.exit. Synchronous writes leave nothing to flush; a broken pipe turns logging off.
 */
function stdoutDestination(): pino.DestinationStream {
  blockingStdout();
  const destination = pino.destination({ dest: 1, sync: true });
  destination.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
    destination.write = () => true;
  });
  return destination;
}

/**
 * Makes fd 1 blocking when it is a pipe or a socket (a container runtime's log pipe, a
 * supervisor's). libuv makes it non-blocking as soon as process.stdout is opened, and then a
 * synchronous write to a full pipe fails with EAGAIN, on which sonic-boom stops the whole event
 * loop for a fixed 100 ms before it tries again: a scheduler logging a line per lead at a few
 * thousand leads a second spent a third of its time there (docs/benchmarks.md). A blocking
 * write waits only until the reader has made room. (`setBlocking` is libuv's, on the stream's
 * handle; a file or a TTY has no such handle and is left as it is.)
 */
function blockingStdout(): void {
  const handle = (process.stdout as unknown as { _handle?: { setBlocking?: (on: boolean) => number } })
    ._handle;
  handle?.setBlocking?.(true);
}

/** `+1-555-0199` -> `***0199`: enough to tell leads apart in a log, not enough to call them. */
export function maskPhone(phone: string | undefined): string | undefined {
  if (phone === undefined) return undefined;
  const digits = phone.replace(/\D/g, "");
  return `***${digits.slice(-4)}`;
}

/** `alex.rivera@example.com` -> `a***@example.com`. */
export function maskEmail(email: string | undefined): string | undefined {
  if (email === undefined) return undefined;
  const at = email.lastIndexOf("@");
  if (at <= 0) return "***";
  return `${email[0]}***${email.slice(at)}`;
}
