import { ratio } from "./stats.js";
import type { SystemName, WorkloadResult } from "./workloads/workload.js";

/**
 * The goals, judged from the medians of one bench run. A goal whose numbers were not
 * measured in this run (a workload left out with --only, or one that failed) is `null`, not missed.
 */
export interface GoalVerdict {
  goal: string;
  met: boolean | null;
  detail: string;
}

type Results = ReadonlyMap<string, WorkloadResult>;

function get(results: Results, workload: string, system: SystemName, metric: string): number {
  return results.get(workload)?.summary[system]?.[metric] ?? Number.NaN;
}

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

function verdict(goal: string, inputs: number[], met: () => boolean, detail: string): GoalVerdict {
  return inputs.every(Number.isFinite)
    ? { goal, met: met(), detail }
    : { goal, met: null, detail: "not measured" };
}

export function judgeGoals(results: Results): GoalVerdict[] {
  const schedEngine = get(results, "scheduling", "engine", "rate");
  const schedBull = get(results, "scheduling", "bullmq", "rate");
  const schedRaw = get(results, "scheduling", "raw", "rate");
  const burstEngine = get(results, "burst", "engine", "p99");
  const burstBull = get(results, "burst", "bullmq", "p99");
  const burstNative = get(results, "burst", "native", "p99");
  const idleP99 = get(results, "idle", "engine", "p99");
  const idleEarly = get(results, "idle", "engine", "early");
  const intakeEngine = get(results, "intake", "engine", "rps");
  const intakeBare = get(results, "intake", "bare", "rps");
  const scaleEngine = get(results, "scale", "engine", "natsRss");
  const scaleBull = get(results, "scale", "bullmq", "redisUsed");

  return [
    verdict(
      "Scheduling throughput at least BullMQ's",
      [schedEngine, schedBull],
      () => schedEngine >= schedBull,
      `engine ÷ BullMQ = ${fmt(ratio(schedEngine, schedBull))}`,
    ),
    verdict(
      "Scheduling throughput within 2x of the raw JetStream ceiling",
      [schedEngine, schedRaw],
      () => schedEngine * 2 >= schedRaw,
      `engine ÷ raw = ${fmt(ratio(schedEngine, schedRaw))} (goal >= 0.50)`,
    ),
    verdict(
      "Burst p99 lateness below BullMQ's",
      [burstEngine, burstBull],
      () => burstEngine < burstBull,
      `engine ${fmt(burstEngine, 0)} ms vs BullMQ ${fmt(burstBull, 0)} ms`,
    ),
    verdict(
      "Burst p99 lateness below half of the native scheduler's",
      [burstEngine, burstNative],
      () => burstEngine < burstNative / 2,
      `engine ${fmt(burstEngine, 0)} ms vs native ${fmt(burstNative, 0)} ms / 2 = ${fmt(burstNative / 2, 0)} ms`,
    ),
    verdict(
      "Idle p99 lateness under 100 ms",
      [idleP99],
      () => idleP99 < 100,
      `engine p99 ${fmt(idleP99, 1)} ms`,
    ),
    verdict(
      "No early delivery when idle",
      [idleEarly],
      () => idleEarly === 0,
      `${fmt(idleEarly, 0)} early (worst run)`,
    ),
    verdict(
      "Intake at least 60% of the bare-publish route's throughput",
      [intakeEngine, intakeBare],
      () => intakeEngine >= 0.6 * intakeBare,
      `lead-intake ÷ bare = ${fmt(ratio(intakeEngine, intakeBare))} (goal >= 0.60)`,
    ),
    verdict(
      "1M pending follow-ups in less memory than BullMQ needs",
      [scaleEngine, scaleBull],
      () => scaleEngine < scaleBull,
      `nats-server RSS ${fmt(scaleEngine / 2 ** 20, 0)} MiB vs Redis used_memory ${fmt(scaleBull / 2 ** 20, 0)} MiB`,
    ),
  ];
}
