/**
 * The top functions of a Go CPU profile (pprof's gzipped protobuf, as nats-server's
 * `prof_port` serves it at /debug/pprof/profile), by their own time and by their inclusive
 * time, as shares of the profile's CPU (bench/pprof.ts; no Go toolchain needed).
 * `burst-cpu.ts --server-profile FILE` writes one.
 *
 *   npx tsx bench/probes/pprof-top.ts FILE [--top N] [--match TEXT]
 *
 * `--match TEXT` lists only functions whose name contains TEXT.
 */
import { readFileSync } from "node:fs";
import { summarizeCpuProfile } from "../pprof.js";

const args = process.argv.slice(2);
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const file = args[0];
const top = Number(option("--top") ?? 30);
const match = option("--match");
if (!file || file.startsWith("--") || !Number.isInteger(top) || top < 1) {
  console.error("usage: npx tsx bench/probes/pprof-top.ts FILE [--top N] [--match TEXT]");
  process.exit(2);
}
// `| head` closes the pipe early: stop quietly.
process.stdout.on("error", () => process.exit(0));

const { totalNs, durationNs, self, inclusive } = summarizeCpuProfile(readFileSync(file));
if (totalNs === 0) {
  console.error(`${file}: no CPU samples`);
  process.exit(1);
}
const lines = [
  `${file}: ${(totalNs / 1e6).toFixed(0)} ms of CPU${durationNs > 0 ? ` in ${(durationNs / 1e9).toFixed(1)} s` : ""}`,
];
for (const [title, table] of [
  ["own time", self],
  ["inclusive time", inclusive],
] as const) {
  lines.push("", title);
  const rows = [...table.entries()]
    .filter(([name]) => match === undefined || name.includes(match))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top);
  for (const [name, ns] of rows) {
    const share = `${((100 * ns) / totalNs).toFixed(1)}%`.padStart(6);
    lines.push(`${share}  ${(ns / 1e6).toFixed(0).padStart(6)} ms  ${name}`);
  }
}
console.log(lines.join("\n"));
