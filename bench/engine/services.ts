import { join } from "node:path";
import { freePort, type ServiceName } from "@followup/nats-harness";
import { BENCH_HOOK_SECRET } from "../peers/hook-call.js";
import { type NodeProcess, startNodeProcess } from "../processes.js";

/**
 * The engine's services as the bench runs them: `node --import tsx services/<svc>/src/main.ts`,
 * configured through the environment exactly as an operator would, each on its own loopback port
 * and ready once its /readyz answers 200.
 */
export type { ServiceName };

export const BENCH_API_KEY = "bench-key";

/**
 * BENCH_SERVICE_ENV: a JSON object of extra variables for every engine service, for trying a
 * setting without editing anything, e.g. BENCH_SERVICE_ENV='{"SCHEDULER_CONCURRENCY":"256"}'.
 * The runner prints it and records it in the results.
 */
export function serviceEnvOverrides(): Record<string, string> {
  const raw = process.env.BENCH_SERVICE_ENV;
  if (!raw) return {};
  const parsed = JSON.parse(raw) as unknown;
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error("BENCH_SERVICE_ENV must be a JSON object of variable names to string values");
  }
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
}

export interface EngineEnv {
  natsUrl: string;
  /** FOLLOWUP_SCHEDULES, e.g. "1h,2h". */
  schedules?: string;
  hookUrl?: string;
  /** LOG_LEVEL; the shipped default is info. */
  logLevel?: string;
  extra?: Record<string, string>;
}

export async function startService(
  name: ServiceName,
  repoRoot: string,
  env: EngineEnv,
  options: { cpuProfileDir?: string } = {},
): Promise<RunningService> {
  const port = await freePort();
  return startNodeProcess({
    name,
    repoRoot,
    // The service of `repoRoot`'s checkout (`--engine-root`), not of the bench's own: the path is
    // taken inside the checkout (relative to this repository's file it led back here).
    script: join("services", name, "src", "main.ts"),
    env: {
      NATS_URL: env.natsUrl,
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: env.logLevel ?? "info",
      API_KEYS: `${BENCH_API_KEY}:bench`,
      FOLLOWUP_ENABLED: "true",
      FOLLOWUP_SCHEDULES: env.schedules ?? "30m,2h",
      FOLLOWUP_HOOK_SECRET: BENCH_HOOK_SECRET,
      ...(env.hookUrl ? { FOLLOWUP_HOOK_URL: env.hookUrl } : {}),
      ...env.extra,
      ...serviceEnvOverrides(),
    },
    ready: { url: `http://127.0.0.1:${port}/readyz` },
    ...(options.cpuProfileDir ? { cpuProfileDir: options.cpuProfileDir } : {}),
  }).then((service) => Object.assign(service, { port }));
}

export type RunningService = NodeProcess & { port: number };
