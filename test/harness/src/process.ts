import { spawn } from "node:child_process";
import { adopt, killGroup, release } from "./reaper.js";

/** What {@link spawnProcess} runs. */
export interface SpawnOptions {
  /** Shown in errors and in the run directory's records. */
  name: string;
  command: string;
  args?: string[];
  /** Added to (and overriding) this process's environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/** How a process ended: `code` when it exited, `signal` when a signal ended it. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process that the harness guarantees will not outlive the test run. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** Whether the process has not exited yet. */
  readonly running: boolean;
  /** Exit code once it has exited by itself; null while running or when a signal ended it. */
  readonly exitCode: number | null;
  /** Captured stdout and stderr lines, interleaved in arrival order (the last 10 000). */
  output(): string[];
  /**
   * Resolves with the first line (already captured or still to come) that matches. Rejects when
   * the process exits without printing one, or after `timeoutMs` (default 10 000), with the
   * output's tail in the message.
   */
  waitForLine(match: RegExp | ((line: string) => boolean), timeoutMs?: number): Promise<string>;
  /** Resolves once the process has exited; rejects after `timeoutMs` (default 10 000). */
  waitForExit(timeoutMs?: number): Promise<ExitStatus>;
  /**
   * Sends `signal` (default SIGTERM) to the process. SIGKILL goes to its whole process group,
   * since a process cannot pass SIGKILL on to children it started (tsx, sh). No-op once exited.
   */
  kill(signal?: NodeJS.Signals): void;
  /** SIGKILLs the process group if still running and waits for the exit. Idempotent. */
  cleanup(): Promise<void>;
}

const MAX_LINES = 10_000;

/**
 * The held lines are trimmed back to MAX_LINES once they reach twice that, not at every line: a
 * splice of the first line off 10 000 moves them all, 63 us a line, and a service logging 12k
 * lines a second (the scheduler's line per lead in the bench) then wrote faster than this
 * reader could take them, so its writes to the full pipe blocked it (docs/benchmarks.md).
 */
const TRIM_AT = 2 * MAX_LINES;

interface LineWaiter {
  match: (line: string) => boolean;
  resolve: (line: string) => void;
  reject: (err: Error) => void;
}

/**
 * Starts a child process in its own process group, captures its output, and registers it for
 * cleanup: it is SIGKILLed when this process exits or is interrupted, by a watchdog if this process
 * is killed outright, and by the vitest global teardown as a last resort. When the process exits,
 * whatever is left of its process group is killed too.
 */
export function spawnProcess(options: SpawnOptions): ManagedProcess {
  const { name, command, args = [], cwd } = options;
  const env: Record<string, string | undefined> = { ...process.env, ...options.env };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];

  const child = spawn(command, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid === undefined) {
    child.on("error", () => {});
    throw new Error(`spawnProcess(${name}): could not start \`${command}\` (not found or not executable)`);
  }
  const pid = child.pid;
  adopt(child as typeof child & { pid: number }, name);

  const lines: string[] = [];
  const waiters = new Set<LineWaiter>();
  let exit: ExitStatus | undefined;
  let closed = false;
  const exitWaiters = new Set<(status: ExitStatus) => void>();

  /** The last MAX_LINES lines: what output() and waitForLine see. */
  const held = () => (lines.length > MAX_LINES ? lines.slice(-MAX_LINES) : lines);
  const tail = () => lines.slice(-40).join("\n") || "(no output)";
  const describe = () => `${name} (pid ${pid}, \`${[command, ...args].join(" ")}\`)`;

  const onLine = (line: string) => {
    lines.push(line);
    if (lines.length >= TRIM_AT) lines.splice(0, lines.length - MAX_LINES);
    for (const waiter of waiters) {
      if (waiter.match(line)) {
        waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      for (const part of parts) onLine(part);
    });
    stream.on("end", () => {
      if (partial !== "") onLine(partial);
      partial = "";
    });
  }

  child.on("error", (err) => onLine(`[harness] ${name}: ${err.message}`));
  child.on("exit", (code, signal) => {
    exit = { code, signal };
    release(pid);
    for (const resolve of exitWaiters) resolve(exit);
    exitWaiters.clear();
  });
  child.on("close", () => {
    closed = true;
    const status = exit ? `exited (code ${exit.code}, signal ${exit.signal})` : "closed its output";
    for (const waiter of waiters) {
      waiter.reject(
        new Error(`${describe()} ${status} before printing the awaited line; output:\n${tail()}`),
      );
    }
    waiters.clear();
  });

  const managed: ManagedProcess = {
    name,
    pid,
    get running() {
      return exit === undefined;
    },
    get exitCode() {
      return exit?.code ?? null;
    },
    output: () => [...held()],
    waitForLine(match, timeoutMs = 10_000) {
      const test = typeof match === "function" ? match : (line: string) => match.test(line);
      const seen = held().find(test);
      if (seen !== undefined) return Promise.resolve(seen);
      if (closed) return Promise.reject(new Error(`${describe()} has exited; output:\n${tail()}`));
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(
            new Error(
              `${describe()} printed no line matching ${match} within ${timeoutMs} ms; output:\n${tail()}`,
            ),
          );
        }, timeoutMs);
        const waiter: LineWaiter = {
          match: test,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
          reject: (err) => {
            clearTimeout(timer);
            reject(err);
          },
        };
        waiters.add(waiter);
      });
    },
    waitForExit(timeoutMs = 10_000) {
      if (exit) return Promise.resolve(exit);
      return new Promise<ExitStatus>((resolve, reject) => {
        const done = (status: ExitStatus) => {
          clearTimeout(timer);
          resolve(status);
        };
        const timer = setTimeout(() => {
          exitWaiters.delete(done);
          reject(new Error(`${describe()} did not exit within ${timeoutMs} ms; output:\n${tail()}`));
        }, timeoutMs);
        exitWaiters.add(done);
      });
    },
    kill(signal = "SIGTERM") {
      if (exit) return;
      if (signal === "SIGKILL") killGroup(pid, "SIGKILL");
      else child.kill(signal);
    },
    async cleanup() {
      if (exit) return;
      killGroup(pid, "SIGKILL");
      await managed.waitForExit(10_000);
    },
  };
  return managed;
}
