// How the engine's services are run, in one place: `node --import tsx services/<name>/src/main.ts`
// from the repository root. `npm start` (scripts/engine.ts), the system tests (test/support), the
// services' own process tests and the bench all start them from here, and wait for them the same way.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ManagedProcess, spawnProcess } from "./process.js";
import { waitFor } from "./wait.js";

/** The repository root: services are run from here, as `npm start` runs them. */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export const SERVICE_NAMES = ["lead-intake", "scheduler", "dispatcher", "reports", "console"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** The entry file of a service: what `pnpm --filter @followup/<name> start` runs. */
export function serviceMain(service: ServiceName): string {
  return join(REPO_ROOT, "services", service, "src", "main.ts");
}

/** The command line of a service; `nodeArgs` go before the loader (e.g. `--cpu-prof`). */
export function serviceCommand(
  service: ServiceName,
  nodeArgs: string[] = [],
): { command: string; args: string[]; cwd: string } {
  return {
    command: process.execPath,
    args: [...nodeArgs, "--import", "tsx", serviceMain(service)],
    cwd: REPO_ROOT,
  };
}

export interface SpawnServiceOptions {
  service: ServiceName;
  /** Shown in errors and logs. Default: the service name. */
  name?: string;
  /** Added to this process's environment (`undefined` removes a variable). */
  env: Record<string, string | undefined>;
  nodeArgs?: string[];
}

/** A service as a real child process under the harness's reaper (see {@link spawnProcess}). */
export function spawnService(options: SpawnServiceOptions): ManagedProcess {
  return spawnProcess({
    name: options.name ?? options.service,
    ...serviceCommand(options.service, options.nodeArgs),
    env: options.env,
  });
}

/**
 * Waits until `<url>/readyz` answers 200 (NATS connected, topology provisioned, consumers
 * running). `alive` is asked before every probe: when it throws, the wait ends at once with that
 * error (a service that exited is not waited for).
 */
export async function waitForReadyz(
  url: string,
  options: { name: string; timeoutMs: number; alive?: () => void },
): Promise<void> {
  let gone: unknown;
  await waitFor(
    async () => {
      try {
        options.alive?.();
      } catch (err) {
        gone = err;
        return true;
      }
      return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) })).status === 200;
    },
    {
      description: `${options.name} to answer 200 on ${url}/readyz`,
      timeoutMs: options.timeoutMs,
      intervalMs: 100,
    },
  );
  if (gone !== undefined) throw gone;
}

/** One JSON log line of a service (pino): `msg` is the event name. */
export type LogLine = { msg?: string; level?: string } & Record<string, unknown>;

/** The lines of a process's output that are JSON objects (pino's log lines); others are skipped. */
export function parseLogLines(output: readonly string[]): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of output) {
    if (!line.startsWith("{")) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // a line cut by a crash, a stack trace, a tsx notice
    }
  }
  return lines;
}
