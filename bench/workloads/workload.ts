import type { RedisPeer, RedisPersistence } from "../peers/redis.js";

/** What the bench measures, and the vocabulary every workload file speaks. */

export interface Metric {
  name: string;
  label: string;
  unit: string;
  better: "higher" | "lower";
  /** How runs are combined: the median (default), or the worst run for a must-be-zero count. */
  across?: "median" | "max";
}

/** The systems a workload compares; the engine always comes first. */
export const SYSTEM_LABELS = {
  engine: "engine",
  bullmqFsync: "BullMQ, appendfsync always",
  bullmq: "BullMQ, no persistence",
  native: "NATS native schedule",
  raw: "raw JetStream publish",
  bare: "bare fastify → JetStream",
  machine: "this machine",
} as const;
export type SystemName = keyof typeof SYSTEM_LABELS;

/** The two BullMQ peers, each on its own kind of redis-server. */
export const BULLMQ_PEERS = { bullmqFsync: "fsync-always", bullmq: "none" } as const satisfies Partial<
  Record<SystemName, RedisPersistence>
>;
export type BullmqPeer = keyof typeof BULLMQ_PEERS;

export function isBullmqPeer(system: SystemName): system is BullmqPeer {
  return system in BULLMQ_PEERS;
}

/** One run's numbers: system → metric → value. A metric a system lacks is simply absent. */
export type RunValues = Partial<Record<SystemName, Record<string, number>>>;

export interface BenchContext {
  smoke: boolean;
  repoRoot: string;
  /** The checkout whose services are measured (`--engine-root`; this repository by default). */
  engineRoot: string;
  /** Runs per workload (`--runs`); a workload may do fewer (scale) and says so. */
  runs: number;
  log(message: string): void;
  /** A remark that belongs in the report next to this workload's table. */
  note(message: string): void;
  /** The lane's redis-server of a BullMQ peer, started on first use. */
  redis(peer: BullmqPeer): Promise<RedisPeer>;
  /** Results of the workloads that already ran, by name (durability reads scheduling and intake). */
  results: ReadonlyMap<string, WorkloadResult>;
  /** When set, the engine's services write CPU profiles (`--cpu-prof`) here. */
  cpuProfileDir?: string;
}

export interface Workload {
  name: string;
  title: string;
  systems: readonly SystemName[];
  metrics: readonly Metric[];
  /** The workload's size in words, for the table's heading. */
  describe(ctx: BenchContext): string;
  /** How many runs this workload does (default ctx.runs). */
  runs?(ctx: BenchContext): number;
  run(ctx: BenchContext, runIndex: number): Promise<RunValues>;
}

export interface WorkloadResult {
  name: string;
  title: string;
  size: string;
  runs: number;
  systems: SystemName[];
  metrics: Metric[];
  /** system → metric → one value per run. */
  values: Partial<Record<SystemName, Record<string, number[]>>>;
  /** system → metric → the runs combined (the median, or the max where the metric says so). */
  summary: Partial<Record<SystemName, Record<string, number>>>;
  notes: string[];
  elapsedMs: number;
  error?: string;
}
