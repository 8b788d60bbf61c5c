import { ratio } from "./stats.js";
import type { SystemName, WorkloadResult } from "./workloads/workload.js";

/**
 * The goals, judged from the medians of one bench run. Each is a same-run ratio against
 * its target (a peer, a ceiling of the machine, or a fixed budget), so it holds however busy the
 * machine was. A goal whose numbers were not measured in this run (a workload left out with
 * --only, or one that failed) is `null`, not missed. They are the report's goal lines, not test
 * assertions: the bench never fails on a missed goal.
 */
export interface GoalVerdict {
  goal: string;
  met: boolean | null;
  /** The measured ratio, compared with `target`; null when not measured. */
  ratio: number | null;
  /** E.g. ">= 1.00", "< 0.50". */
  target: string;
  /** The numbers behind the ratio. */
  detail: string;
}

type Results = ReadonlyMap<string, WorkloadResult>;

function get(results: Results, workload: string, system: SystemName, metric: string): number {
  return results.get(workload)?.summary[system]?.[metric] ?? Number.NaN;
}

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const count = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a");

type Comparison = ">=" | "<=" | "<";

/** `numerator ÷ denominator` against `bound`; null when either side was not measured. */
function goal(
  text: string,
  numerator: number,
  denominator: number,
  comparison: Comparison,
  bound: number,
  detail: string,
): GoalVerdict {
  const value = ratio(numerator, denominator);
  const target = `${comparison} ${bound.toFixed(2)}`;
  if (!Number.isFinite(value)) return { goal: text, met: null, ratio: null, target, detail: "not measured" };
  const met = comparison === ">=" ? value >= bound : comparison === "<=" ? value <= bound : value < bound;
  return { goal: text, met, ratio: value, target, detail };
}

export function judgeGoals(results: Results): GoalVerdict[] {
  const sched = (system: SystemName, metric = "rate") => get(results, "scheduling", system, metric);
  const burst = (system: SystemName, metric: string) => get(results, "burst", system, metric);
  const batchRate = get(results, "limits", "machine", "batchRate");
  const schedulerCpu = sched("engine", "clientCpu");
  const idleP99 = get(results, "idle", "engine", "p99");
  const idleEarly = get(results, "idle", "engine", "early");
  const intakeEngine = get(results, "intake", "engine", "rps");
  const intakeBare = get(results, "intake", "bare", "rps");
  const scaleEngine = get(results, "scale", "engine", "seconds");
  const scaleBull = get(results, "scale", "bullmqFsync", "seconds");
  const memEngine = get(results, "scale", "engine", "natsRss");
  const memRedis = get(results, "scale", "bullmqFsync", "redisUsed");
  const ms = (n: number) => `${count(n)} ms`;
  const s = (n: number) => `${fmt(n, 1)} s`;
  const mib = (n: number) => `${count(n / 2 ** 20)} MiB`;

  return [
    goal(
      "Scheduling 100k at sync always: at least BullMQ-appendfsync-always's rate",
      sched("engine"),
      sched("bullmqFsync"),
      ">=",
      1,
      `engine ${count(sched("engine"))}/s vs BullMQ (appendfsync always) ${count(sched("bullmqFsync"))}/s`,
    ),
    goal(
      "Scheduling 100k at sync always: at least half the raw atomic-batch timer rate",
      sched("engine"),
      batchRate,
      ">=",
      0.5,
      `engine ${count(sched("engine"))}/s vs atomic-batch timers ${count(batchRate)}/s`,
    ),
    goal(
      "Scheduler CPU under 100 ms per 1000 follow-ups",
      schedulerCpu,
      100,
      "<",
      1,
      `scheduler ${ms(schedulerCpu)} per 1000 ÷ 100 ms`,
    ),
    goal(
      "Burst of 20k: drain time at most BullMQ-appendfsync-always's",
      burst("engine", "drain"),
      burst("bullmqFsync", "drain"),
      "<=",
      1,
      `engine ${s(burst("engine", "drain"))} vs BullMQ (appendfsync always) ${s(burst("bullmqFsync", "drain"))}`,
    ),
    goal(
      "Burst of 20k: p99 lateness at most BullMQ-appendfsync-always's",
      burst("engine", "p99"),
      burst("bullmqFsync", "p99"),
      "<=",
      1,
      `engine ${ms(burst("engine", "p99"))} vs BullMQ (appendfsync always) ${ms(burst("bullmqFsync", "p99"))}`,
    ),
    goal(
      "Burst of 20k: drain time under half the native scheduler's",
      burst("engine", "drain"),
      burst("native", "drain"),
      "<",
      0.5,
      `engine ${s(burst("engine", "drain"))} vs native ${s(burst("native", "drain"))}`,
    ),
    goal(
      "Burst of 20k: p99 lateness under half the native scheduler's",
      burst("engine", "p99"),
      burst("native", "p99"),
      "<",
      0.5,
      `engine ${ms(burst("engine", "p99"))} vs native ${ms(burst("native", "p99"))}`,
    ),
    goal("Idle p99 lateness under 100 ms", idleP99, 100, "<", 1, `engine p99 ${fmt(idleP99, 1)} ms ÷ 100 ms`),
    Number.isFinite(idleEarly)
      ? {
          goal: "No early delivery when idle",
          met: idleEarly === 0,
          ratio: null,
          target: "0 early",
          detail: `${count(idleEarly)} early (worst run)`,
        }
      : {
          goal: "No early delivery when idle",
          met: null,
          ratio: null,
          target: "0 early",
          detail: "not measured",
        },
    goal(
      "1M pending: time to schedule at most BullMQ's (both fsync before ack)",
      scaleEngine,
      scaleBull,
      "<=",
      1,
      `engine ${s(scaleEngine)} (sync always) vs BullMQ ${s(scaleBull)} (appendfsync always)`,
    ),
    goal(
      "1M pending: less memory than Redis",
      memEngine,
      memRedis,
      "<",
      1,
      `nats-server RSS ${mib(memEngine)} vs Redis used_memory ${mib(memRedis)}`,
    ),
    goal(
      "Intake at least 0.8x the bare publish route",
      intakeEngine,
      intakeBare,
      ">=",
      0.8,
      `lead-intake ${count(intakeEngine)} req/s vs bare ${count(intakeBare)} req/s`,
    ),
  ];
}
