/**
 * Summarizes V8 CPU profiles (`--cpu-prof`, as written by `pnpm bench --profile`): where the
 * self time went, by function and by package, so a profile can be read in a terminal and quoted
 * in docs/benchmarks.md.
 *
 *   npx tsx bench/profile.ts bench/results/profiles/scheduler-*.cpuprofile [--top 25]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** Self time in ms per node id (from the sample deltas, which are more exact than hit counts). */
function selfTimes(profile: CpuProfile): Map<number, number> {
  const times = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i]!;
    // A sample's time is the delta to the next sample.
    const us = deltas[i + 1] ?? 0;
    times.set(id, (times.get(id) ?? 0) + us / 1000);
  }
  return times;
}

/** The package a script belongs to: `pkg@version` under node_modules, else its repo path. */
export function packageOf(url: string): string {
  if (url === "") return "(native/V8)";
  const pnpm = /node_modules\/\.pnpm\/([^/]+)\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pnpm) return pnpm[2]!;
  const plain = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (plain) return plain[1]!;
  if (url.startsWith("node:")) return "node (core)";
  const repo = /\/(services\/[^/]+|packages\/[^/]+|bench|test)\//.exec(url);
  return repo ? repo[1]! : url;
}

export function summarizeProfile(profile: CpuProfile, top: number): string {
  const times = selfTimes(profile);
  const total = [...times.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  for (const node of profile.nodes) {
    const ms = times.get(node.id) ?? 0;
    if (ms === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^.*\/(node_modules\/\.pnpm\/[^/]+\/node_modules\/)?/, "");
    const key = `${functionName || "(anonymous)"}  ${file}${url ? `:${lineNumber + 1}` : ""}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + ms);
    byPackage.set(packageOf(url), (byPackage.get(packageOf(url)) ?? 0) + ms);
  }
  const rows = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(
        ([name, ms]) =>
          `${ms.toFixed(0).padStart(8)} ms ${((ms / total) * 100).toFixed(1).padStart(5)}%  ${name}`,
      );
  const wall = (profile.endTime - profile.startTime) / 1000;
  return [
    `profiled ${wall.toFixed(0)} ms, sampled ${total.toFixed(0)} ms`,
    "",
    "self time by package:",
    ...rows(byPackage),
    "",
    "self time by function:",
    ...rows(byFunction),
  ].join("\n");
}

const args = process.argv.slice(2);
const topAt = args.indexOf("--top");
const top = topAt >= 0 ? Number(args[topAt + 1]) : 30;
const files = args.filter((a, i) => a !== "--top" && i !== topAt + 1);
if (files.length === 0) {
  console.error("usage: npx tsx bench/profile.ts <file.cpuprofile>... [--top N]");
  process.exit(1);
}
for (const file of files) {
  console.log(`== ${file}`);
  console.log(summarizeProfile(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, top));
  console.log();
}
