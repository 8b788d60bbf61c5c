import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ManagedProcess, spawnProcess, waitFor } from "@followup/nats-harness";

/**
 * Node programs the bench runs as child processes (the engine's services and the peers'
 * workers), each `node --import tsx <script>` in its own process group, so a measurement sees
 * exactly what ships and every process is stopped by its pid when the measurement ends.
 */
export interface NodeProcess {
  readonly name: string;
  readonly pid: number;
  /** Resident set size in bytes, read from /proc (0 once the process is gone). */
  rssBytes(): number;
  output(): string[];
  /**
   * Ends the process once its measurement is over. A profiled process gets SIGTERM and `graceMs`
   * to exit (V8 writes the profile on exit); any other is SIGKILLed at once: nothing of its
   * shutdown is measured, and a graceful one costs seconds (a dispatcher waits out its pull).
   */
  stop(graceMs?: number): Promise<void>;
}

export interface NodeProcessOptions {
  name: string;
  repoRoot: string;
  /** Path of the entry file relative to the repository root. */
  script: string;
  env: Record<string, string>;
  /** Ready when this line is printed, or when this URL answers 2xx. */
  ready: { line: RegExp } | { url: string };
  readyTimeoutMs?: number;
  /** When set, `--cpu-prof` with the profile written into this directory on exit. */
  cpuProfileDir?: string;
}

export async function startNodeProcess(options: NodeProcessOptions): Promise<NodeProcess> {
  // One directory per process: the tsx loader thread writes a profile of its own beside the main one.
  const profile = options.cpuProfileDir
    ? ["--cpu-prof", `--cpu-prof-dir=${join(options.cpuProfileDir, `${options.name}-${Date.now()}`)}`]
    : [];
  const child: ManagedProcess = spawnProcess({
    name: options.name,
    command: process.execPath,
    args: [...profile, "--import", "tsx", join(options.repoRoot, options.script)],
    env: options.env,
    cwd: options.repoRoot,
  });
  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  try {
    if ("line" in options.ready) {
      await child.waitForLine(options.ready.line, timeoutMs);
    } else {
      const url = options.ready.url;
      const exited = child.waitForExit(timeoutMs).then(
        (status) => {
          throw new Error(`${options.name} exited (code ${status.code}, signal ${status.signal})`);
        },
        () => new Promise<never>(() => {}),
      );
      const answered = waitFor(async () => (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok, {
        description: `${options.name} to answer ${url}`,
        timeoutMs,
        intervalMs: 100,
      });
      await Promise.race([answered, exited]);
    }
  } catch (err) {
    await child.cleanup();
    throw new Error(
      `${options.name} did not become ready: ${(err as Error).message}\n${child.output().slice(-30).join("\n")}`,
    );
  }
  return {
    name: options.name,
    pid: child.pid,
    rssBytes: () => rssBytes(child.pid),
    output: () => child.output(),
    async stop(graceMs = 20_000) {
      if (child.running && !options.cpuProfileDir) await child.cleanup();
      if (child.running) {
        child.kill("SIGTERM");
        try {
          await child.waitForExit(graceMs);
        } catch {
          await child.cleanup();
        }
      }
      // BENCH_LOG_DIR keeps what each process printed (its last 10 000 lines), for digging into a result.
      const logDir = process.env.BENCH_LOG_DIR;
      if (logDir) {
        mkdirSync(logDir, { recursive: true });
        writeFileSync(join(logDir, `${options.name}-${child.pid}.log`), `${child.output().join("\n")}\n`);
      }
    },
  };
}

/** VmRSS of a process in bytes; 0 when it is gone or /proc is not there. */
export function rssBytes(pid: number): number {
  try {
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Starts several things at once; if any fails to start, stops those that did and rethrows, so a
 * failed start leaves nothing running.
 */
export async function startTogether<T extends { stop(): Promise<void> }>(starts: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (!failed) return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  await Promise.all(
    settled.map((s) => (s.status === "fulfilled" ? s.value.stop().catch(() => {}) : Promise.resolve())),
  );
  throw failed.reason;
}

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU time (user + system) a process has used so far, in ms; NaN when it cannot be read. */
export function cpuMs(pid: number): number {
  const { user, system } = cpuSplitMs(pid);
  return user + system;
}

/** CPU time process `pid` has used so far in user and in kernel mode (syscalls), in ms; NaN once it is gone. */
export function cpuSplitMs(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name start at field 3; utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return {
      user: (Number(fields[11]) * 1000) / TICKS_PER_SECOND,
      system: (Number(fields[12]) * 1000) / TICKS_PER_SECOND,
    };
  } catch {
    return { user: Number.NaN, system: Number.NaN };
  }
}

/** A process's CPU so far in user and in kernel mode, in ms (cpuSplitMs, or a sum of them). */
export type CpuReader = () => { user: number; system: number };

/**
 * The CPU each reader's processes spent while `work` ran, in ms per 1000 of `count`: in all, and
 * of that in the kernel (syscalls). How the burst probes put a side's CPU against its peer's.
 */
export async function cpuPer1kDuring<K extends string>(
  count: number,
  readers: Record<K, CpuReader>,
  work: () => Promise<void>,
): Promise<Record<K, { all: number; system: number }>> {
  const entries = Object.entries(readers) as [K, CpuReader][];
  const before = entries.map(([, read]) => read());
  await work();
  const per1k = (ms: number) => Math.round((ms * 1000) / count);
  return Object.fromEntries(
    entries.map(([name, read], i) => {
      const [now, then] = [read(), before[i]!];
      const system = now.system - then.system;
      return [name, { all: per1k(now.user - then.user + system), system: per1k(system) }];
    }),
  ) as Record<K, { all: number; system: number }>;
}

/** CPU time this (the bench's) process has used so far, in ms. */
export function ownCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}
