/**
 * The benchmark runner: every workload against its peers, in one run on one machine, so the
 * ratios hold however noisy the machine is. Writes bench/results/<date>.json and .md and prints
 * each table as it goes.
 *
 *   pnpm bench                       # everything, full size, 3 runs each (takes a while)
 *   pnpm bench --smoke               # every workload at a tiny size, 1 run (< 1 min; CI)
 *   pnpm bench --only burst,idle     # some workloads
 *   pnpm bench --runs 5              # more runs per workload (the table shows medians)
 *   pnpm bench --profile             # the engine's services write CPU profiles to bench/results/profiles/
 *   pnpm bench --only limits         # the physical limits alone (disk fsyncs/s, atomic-batch timers/s, hook calls)
 */
import { mkdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { serviceEnvOverrides } from "./engine/services.js";
import { judgeGoals } from "./goals.js";
import { describeMachine } from "./machine.js";
import { parseOptions, usage } from "./options.js";
import { type RedisPeer, startRedis } from "./peers/redis.js";
import { type BenchReport, renderGoals, renderWorkload, writeReport } from "./report.js";
import { median } from "./stats.js";
import { burst } from "./workloads/burst.js";
import { durability } from "./workloads/durability.js";
import { idle } from "./workloads/idle.js";
import { intake } from "./workloads/intake.js";
import { ceilingNotes, limits } from "./workloads/limits.js";
import { scale } from "./workloads/scale.js";
import { scheduling } from "./workloads/scheduling.js";
import {
  type BenchContext,
  BULLMQ_PEERS,
  type BullmqPeer,
  type RunValues,
  SYSTEM_LABELS,
  type SystemName,
  type Workload,
  type WorkloadResult,
} from "./workloads/workload.js";

const WORKLOADS: Workload[] = [limits, scheduling, burst, idle, intake, durability, scale];
/** How --smoke splits the workloads into two lanes that run side by side. */
const SMOKE_LANES = [
  ["scheduling", "burst", "scale"],
  ["limits", "idle", "intake", "durability"],
];
const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Fails a workload that outlives its budget instead of hanging the whole run. */
function withinBudget<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const overrun = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)),
      ms,
    );
  });
  return Promise.race([work, overrun]).finally(() => clearTimeout(timer));
}

function addRun(result: WorkloadResult, values: RunValues): void {
  for (const [system, metrics] of Object.entries(values) as [SystemName, Record<string, number>][]) {
    const perMetric = result.values[system] ?? {};
    result.values[system] = perMetric;
    for (const [metric, value] of Object.entries(metrics)) {
      const runs = perMetric[metric] ?? [];
      runs.push(value);
      perMetric[metric] = runs;
    }
  }
}

function combine(result: WorkloadResult): void {
  for (const system of result.systems) {
    const perMetric = result.values[system];
    if (!perMetric) continue;
    const summary: Record<string, number> = {};
    for (const metric of result.metrics) {
      const runs = perMetric[metric.name];
      if (!runs || runs.length === 0) continue;
      summary[metric.name] = metric.across === "max" ? Math.max(...runs) : median(runs);
    }
    result.summary[system] = summary;
  }
}

async function main(): Promise<number> {
  const options = parseOptions(
    process.argv.slice(2),
    WORKLOADS.map((w) => w.name),
    join(REPO_ROOT, "bench/results"),
  );
  if (options.help) {
    console.log(usage(WORKLOADS.map((w) => w.name)));
    return 0;
  }
  const started = new Date();
  // Taken at the start: the engine's revision is what was measured, even if it changes meanwhile.
  const machine = describeMachine(options.engineRoot ? resolve(options.engineRoot) : REPO_ROOT);
  const selected = WORKLOADS.filter((w) => !options.only || options.only.includes(w.name));
  const log = (message: string) => process.stdout.write(`${message}\n`);
  const cpuProfileDir = options.profile ? join(options.out, "profiles") : undefined;
  if (cpuProfileDir) mkdirSync(cpuProfileDir, { recursive: true });

  const results = new Map<string, WorkloadResult>();
  const engineRoot = options.engineRoot ? resolve(options.engineRoot) : REPO_ROOT;
  const redisPeers: Promise<RedisPeer>[] = [];

  /** A context per lane: its own redis-servers, so two lanes never flush each other's jobs. */
  const laneContext = (): Omit<BenchContext, "note"> => {
    const redis = new Map<BullmqPeer, Promise<RedisPeer>>();
    return {
      smoke: options.smoke,
      repoRoot: REPO_ROOT,
      engineRoot,
      runs: options.runs,
      log,
      redis: (peer) => {
        let started = redis.get(peer);
        if (!started) {
          started = startRedis(REPO_ROOT, BULLMQ_PEERS[peer]).then((server) => {
            log(
              `redis-server ${server.version} for ${SYSTEM_LABELS[peer]} on 127.0.0.1:${server.port} (pid ${server.pid}, ${server.dir})`,
            );
            return server;
          });
          redis.set(peer, started);
          redisPeers.push(started);
        }
        return started;
      },
      results,
      ...(cpuProfileDir ? { cpuProfileDir } : {}),
    };
  };

  const overrides = serviceEnvOverrides();
  if (Object.keys(overrides).length > 0)
    log(`engine services get BENCH_SERVICE_ENV ${JSON.stringify(overrides)}`);
  if (engineRoot !== REPO_ROOT) log(`engine services from ${engineRoot}`);
  log(
    `bench: ${selected.map((w) => w.name).join(", ")}${options.smoke ? " (smoke)" : ""}; ${options.runs} run(s) each`,
  );
  let failures = 0;

  const runWorkload = async (workload: Workload, lane: Omit<BenchContext, "note">): Promise<void> => {
    const result: WorkloadResult = {
      name: workload.name,
      title: workload.title,
      size: "",
      runs: 0,
      systems: [...workload.systems],
      metrics: [...workload.metrics],
      values: {},
      summary: {},
      notes: [],
      elapsedMs: 0,
    };
    const ctx: BenchContext = {
      ...lane,
      note: (message) => {
        if (!result.notes.includes(message)) result.notes.push(message);
      },
    };
    result.size = workload.describe(ctx);
    result.runs = workload.runs?.(ctx) ?? ctx.runs;
    const t0 = performance.now();
    log(`\n== ${workload.title}: ${result.size}`);
    try {
      for (let run = 0; run < result.runs; run++) {
        log(` ${workload.name} run ${run + 1}/${result.runs}`);
        // Scale at full size schedules a million follow-ups twice (sync always and lazy).
        const budgetMs = options.smoke ? 45_000 : 90 * 60_000;
        addRun(
          result,
          await withinBudget(workload.run(ctx, run), budgetMs, `${workload.name} run ${run + 1}`),
        );
      }
    } catch (err) {
      failures++;
      result.error = (err as Error).message.split("\n").slice(0, 6).join(" ");
      log(` ${workload.name} FAILED: ${(err as Error).stack ?? String(err)}`);
    }
    result.elapsedMs = performance.now() - t0;
    combine(result);
    results.set(workload.name, result);
    log(`\n${renderWorkload(result)}\n(${(result.elapsedMs / 1000).toFixed(1)} s)`);
  };

  // A measurement wants the machine to itself, so a full run is one lane. A smoke run measures
  // nothing: it runs in two lanes (durability after intake, so it finds the numbers it reuses)
  // to stay under a minute on 2 cores.
  const lanes = options.smoke
    ? SMOKE_LANES.map((names) => selected.filter((w) => names.includes(w.name)))
    : [selected];
  await Promise.all(
    lanes.map(async (workloads) => {
      const lane = laneContext();
      for (const workload of workloads) await runWorkload(workload, lane);
    }),
  );
  const ordered = new Map(
    selected.filter((w) => results.has(w.name)).map((w) => [w.name, results.get(w.name)!]),
  );
  const ceilings = ceilingNotes(ordered);
  for (const [workload, note] of ceilings) ordered.get(workload)?.notes.push(note);
  if (ceilings.length > 0)
    log(`\n### Read against the ceilings\n\n${ceilings.map(([w, n]) => `- ${w}: ${n}`).join("\n")}`);

  const peers = (await Promise.all(redisPeers.map((p) => p.catch(() => undefined)))).filter(
    (p) => p !== undefined,
  );
  const report: BenchReport = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    command: ["pnpm bench", ...process.argv.slice(2)].join(" "),
    smoke: options.smoke,
    runs: options.runs,
    machine: { ...machine, versions: { ...machine.versions, redis: peers[0]?.version ?? "not used" } },
    serviceEnv: overrides,
    // Relative to the repository, so a results file names no path of the machine it ran on.
    engineRoot: relative(REPO_ROOT, engineRoot) || ".",
    workloads: [...ordered.values()],
    goals: judgeGoals(ordered),
  };
  await Promise.all(peers.map((p) => p.stop()));
  const written = writeReport(options.out, report);
  log(`\n### Goals\n\n${renderGoals(report.goals)}\n`);
  log(`results: ${written.json}\n         ${written.markdown}`);
  log(
    `bench finished in ${((Date.now() - started.getTime()) / 1000).toFixed(1)} s${failures ? `; ${failures} workload(s) FAILED` : ""}`,
  );
  return failures > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench: ${(err as Error).message}`);
    process.exit(2);
  },
);
