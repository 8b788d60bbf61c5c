import type { Logger } from "pino";
import { ConfigError } from "./config.js";

/** Exit status for a configuration error (sysexits EX_CONFIG). */
export const EXIT_CONFIG = 78;

/**
 * Runs a service's composition root. A ConfigError is printed as-is (it names every bad
 * variable) and exits with EX_CONFIG; any other start-up failure is logged and exits 1.
 */
export function runMain(service: string, main: () => Promise<unknown>): void {
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${service}: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    process.stderr.write(
      `${service}: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}

/**
 * On SIGTERM or SIGINT runs `stop` once (stop pulling, finish in-flight work, drain NATS)
 * and exits 0; exits 1 if it takes longer than `timeoutMs` or fails. A second signal exits
 * at once. Returns a function that triggers the same shutdown (for tests and fatal errors).
 */
export function onShutdown(
  logger: Logger,
  stop: (reason: string) => Promise<void>,
  options: { timeoutMs?: number; exit?: (code: number) => void } = {},
): (reason: string) => Promise<void> {
  const { timeoutMs = 25_000, exit = (code: number) => process.exit(code) } = options;
  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    if (stopping) return stopping;
    note(() => logger.info({ reason }, "shutdown_started"));
    const timer = setTimeout(() => {
      note(() => logger.error({ timeoutMs }, "shutdown_timed_out"));
      exit(1);
    }, timeoutMs);
    timer.unref();
    stopping = stop(reason).then(
      () => {
        clearTimeout(timer);
        note(() => {
          logger.info("shutdown_complete");
          logger.flush?.();
        });
        exit(0);
      },
      (err: unknown) => {
        clearTimeout(timer);
        note(() => logger.error({ err }, "shutdown_failed"));
        exit(1);
      },
    );
    return stopping;
  };
  // Started by a supervisor with an IPC channel (the engine runner): when it goes away, so do we,
  // cleanly, instead of running on as an orphan.
  if (process.send) process.once("disconnect", () => void shutdown("parent_exited"));
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      if (stopping) {
        note(() => logger.warn({ signal }, "second_signal_exiting_now"));
        exit(1);
        return;
      }
      void shutdown(signal);
    });
  }
  return shutdown;
}

/**
 * Logs on the way out may fail (the supervisor reading our stdout died: EPIPE); the exit must
 * happen anyway, or the process lingers as an orphan that ignores every signal.
 */
function note(log: () => void): void {
  try {
    log();
  } catch {
    // nothing left to tell it to
  }
}
