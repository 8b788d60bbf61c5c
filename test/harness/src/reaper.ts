// Makes sure no child the harness starts outlives the run, in three layers:
//  1. an in-process registry, SIGKILLed synchronously on 'exit' and on SIGINT/SIGTERM/SIGHUP;
//  2. a watchdog per child: a detached `sh` loop that kills the child's process group once the
//     parent Node process is gone (covers SIGKILL of a vitest worker, which runs no handler);
//  3. a record per child in the run directory, which the vitest global teardown sweeps.
// Every child runs detached, i.e. leads its own process group, so killing the group also takes
// grandchildren (tsx starts the real node process as a child of its own).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Environment variable naming the run directory the vitest global setup created. */
export const RUN_DIR_ENV = "FOLLOWUP_HARNESS_RUN_DIR";

interface ChildRecord {
  pid: number;
  name: string;
  parentPid: number;
  /** Kernel start time of `pid`, so a teardown never kills a process that reused the pid. */
  startTime: string;
}

interface LiveChild {
  watchdog: ChildProcess | undefined;
  recordFile: string | undefined;
}

const live = new Map<number, LiveChild>();
const tempDirs = new Set<string>();
let hooked = false;

// $1 = parent pid, $2 = child pid (= its process group id). A zombie parent counts as gone.
const WATCHDOG = `
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/status" ] || return 0
  while IFS= read -r line; do
    case $line in State:*Z*) return 1 ;; State:*) return 0 ;; esac
  done < "/proc/$1/status"
  return 0
}
while alive "$1" && kill -s 0 -- "-$2" 2>/dev/null; do sleep 1; done
alive "$1" || kill -s KILL -- "-$2" 2>/dev/null
exit 0
`;

/** Takes charge of a child spawned with `detached: true` (so that its pid is its process group). */
export function adopt(child: ChildProcess & { pid: number }, name: string): void {
  installExitHooks();
  const watchdog = spawn("sh", ["-c", WATCHDOG, "watchdog", String(process.pid), String(child.pid)], {
    detached: true,
    stdio: "ignore",
  });
  watchdog.on("error", () => {});
  watchdog.unref();
  live.set(child.pid, { watchdog, recordFile: record(child.pid, name) });
}

/** Called once the child has exited: kills what is left of its process group, forgets it. */
export function release(pid: number): void {
  killGroup(pid, "SIGKILL");
  const entry = live.get(pid);
  if (entry === undefined) return;
  live.delete(pid);
  entry.watchdog?.kill("SIGKILL");
  if (entry.recordFile) rmSync(entry.recordFile, { force: true });
}

/** Sends `signal` to the whole process group led by `pid`; a group that is gone is not an error. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/** A directory to delete on exit if its owner has not deleted it by then. */
export function registerTempDir(dir: string): void {
  installExitHooks();
  tempDirs.add(dir);
}

export function removeTempDir(dir: string): void {
  tempDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

/** Whether `pid` is a running process. A zombie (exited, not yet reaped) counts as not running. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true; // no procfs: trust kill -0
  }
}

/** Kernel start time of `pid` (procfs, else `ps`), or undefined when the process does not exist. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name start at field 3; starttime is field 22.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    try {
      const out = execFileSync("ps", ["-o", "lstart=", "-p", String(pid)], { encoding: "utf8" }).trim();
      return out === "" ? undefined : out;
    } catch {
      return undefined;
    }
  }
}

/**
 * Kills (SIGKILL, whole process group) every child recorded in `runDir` that is still running and
 * is still the process that was recorded (same start time). Returns the pids it killed.
 */
export function reapRecorded(runDir: string): number[] {
  const killed: number[] = [];
  let files: string[];
  try {
    files = readdirSync(runDir).filter((f) => f.endsWith(".pid.json"));
  } catch {
    return killed;
  }
  for (const file of files) {
    let entry: ChildRecord;
    try {
      entry = JSON.parse(readFileSync(join(runDir, file), "utf8")) as ChildRecord;
    } catch {
      continue;
    }
    if (entry.startTime && processStartTime(entry.pid) === entry.startTime) {
      killGroup(entry.pid, "SIGKILL");
      killed.push(entry.pid);
    }
    rmSync(join(runDir, file), { force: true });
  }
  return killed;
}

function record(pid: number, name: string): string | undefined {
  const runDir = process.env[RUN_DIR_ENV];
  const startTime = processStartTime(pid);
  if (!runDir || startTime === undefined) return undefined;
  const file = join(runDir, `${pid}.pid.json`);
  const entry: ChildRecord = { pid, name, parentPid: process.pid, startTime };
  try {
    writeFileSync(file, JSON.stringify(entry));
    return file;
  } catch {
    return undefined; // run directory gone (e.g. a stale env var): the other two layers still hold
  }
}

function killAllNow(): void {
  for (const [pid, entry] of live) {
    killGroup(pid, "SIGKILL");
    entry.watchdog?.kill("SIGKILL");
    if (entry.recordFile) {
      try {
        unlinkSync(entry.recordFile);
      } catch {}
    }
  }
  live.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  killAllNow();
  // Keep the signal's default effect (termination) unless someone else has a handler for it.
  process.removeListener(signal, onSignal);
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installExitHooks(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", killAllNow);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, onSignal);
}
