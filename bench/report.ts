import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { GoalVerdict } from "./goals.js";
import type { Machine } from "./machine.js";
import { ratio } from "./stats.js";
import { type Metric, SYSTEM_LABELS, type WorkloadResult } from "./workloads/workload.js";

/** One bench run as written to bench/results/<date>.json. */
export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  command: string;
  smoke: boolean;
  runs: number;
  machine: Machine;
  /** BENCH_SERVICE_ENV: settings given to every engine service beyond the bench's own. */
  serviceEnv: Record<string, string>;
  /** Where the measured services came from: "." for this repository. */
  engineRoot: string;
  workloads: WorkloadResult[];
  goals: GoalVerdict[];
}

export function formatValue(value: number | undefined, metric: Metric): string {
  if (value === undefined || !Number.isFinite(value)) return "—";
  switch (metric.unit) {
    case "bytes":
      return `${(value / 2 ** 20).toFixed(value < 10 * 2 ** 20 ? 1 : 0)} MiB`;
    case "ms":
      return `${value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString("en-US")} ms`;
    case "s":
      return `${value.toFixed(value < 10 ? 2 : 1)} s`;
    default:
      return Math.round(value).toLocaleString("en-US");
  }
}

function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : "—";
}

/** A workload's table: one row per system (its medians), then engine ÷ peer for each peer. */
export function renderWorkload(result: WorkloadResult): string {
  const metrics = result.metrics;
  const head = `| system | ${metrics.map((m) => `${m.label}${m.better === "higher" ? " ↑" : " ↓"}`).join(" | ")} |`;
  const rule = `|---|${metrics.map(() => "---:").join("|")}|`;
  const rows = result.systems.map(
    (system) =>
      `| ${SYSTEM_LABELS[system]} | ${metrics.map((m) => formatValue(result.summary[system]?.[m.name], m)).join(" | ")} |`,
  );
  const engine = result.summary.engine ?? {};
  const ratios = result.systems
    .filter((system) => system !== "engine")
    .map((peer) => {
      const cells = metrics.map((m) =>
        formatRatio(ratio(engine[m.name] ?? Number.NaN, result.summary[peer]?.[m.name] ?? Number.NaN)),
      );
      return `| *engine ÷ ${SYSTEM_LABELS[peer]}* | ${cells.join(" | ")} |`;
    })
    .filter((row) => !/^\| [^|]+ \|( — \|)+$/.test(row));
  const heading = `### ${result.title}\n\n${result.size}; ${result.runs === 1 ? "1 run" : `median of ${result.runs} runs`}${
    metrics.some((m) => m.across === "max") ? " (counts that must be zero: the worst run)" : ""
  }.`;
  const lines = [heading, "", head, rule, ...rows, ...ratios];
  if (result.error) lines.push("", `**Failed:** ${result.error}`);
  for (const note of result.notes) lines.push("", `- ${note}`);
  return lines.join("\n");
}

/** The goal lines: each one's same-run ratio, its target and met or missed. */
export function renderGoals(goals: GoalVerdict[]): string {
  const mark = (met: boolean | null) => (met === null ? "not measured" : met ? "met" : "**missed**");
  return [
    "| goal | ratio | target | verdict | numbers |",
    "|---|---:|---|---|---|",
    ...goals.map(
      (g) =>
        `| ${g.goal} | ${g.ratio === null ? "—" : formatRatio(g.ratio)} | ${g.target} | ${mark(g.met)} | ${g.detail} |`,
    ),
  ].join("\n");
}

export function renderReport(report: BenchReport): string {
  const m = report.machine;
  return [
    `## Results of ${report.startedAt}${report.smoke ? " (smoke: tiny sizes, not a measurement)" : ""}`,
    "",
    `Machine: ${m.cpus} × ${m.cpuModel}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, ${m.os}. ` +
      `Node ${m.versions.node}, nats-server ${m.versions.natsServer}, Redis ${m.versions.redis}, ` +
      `BullMQ ${m.versions.bullmq}, @nats-io/jetstream ${m.versions.jetstream}, autocannon ${m.versions.autocannon}. ` +
      `Engine at ${m.revision}.`,
    "",
    `Command: \`${report.command}\``,
    ...(Object.keys(report.serviceEnv).length > 0
      ? ["", `Engine services got BENCH_SERVICE_ENV=${JSON.stringify(report.serviceEnv)}.`]
      : []),
    ...(report.engineRoot !== "."
      ? ["", `Engine services from another checkout: ${report.engineRoot}.`]
      : []),
    "",
    "### Goals",
    "",
    renderGoals(report.goals),
    "",
    ...report.workloads.flatMap((w) => [renderWorkload(w), ""]),
  ].join("\n");
}

/** Writes `<dir>/<stamp>.json` and `<dir>/<stamp>.md`; returns both paths. */
export function writeReport(dir: string, report: BenchReport): { json: string; markdown: string } {
  mkdirSync(dir, { recursive: true });
  const stamp = report.startedAt.replace(/:/g, "").replace(/\.\d+Z$/, "Z");
  const base = join(dir, `${stamp}${report.smoke ? ".smoke" : ""}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${base}.md`, `${renderReport(report)}\n`);
  return { json: `${base}.json`, markdown: `${base}.md` };
}
