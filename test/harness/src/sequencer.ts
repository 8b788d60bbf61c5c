import { statSync } from "node:fs";
import { relative } from "node:path";
import type { TestSpecification } from "vitest/node";
import { BaseSequencer } from "vitest/node";

/**
 * The files that took over 10 s in a full run (2026-12-02, 2 cores), longest first. With no
 * results cached (every CI run is a fresh clone) vitest orders files by size, and a 30-50 s
 * fault or end-to-end file started last ran alone at the end of the run while the other worker
 * idled. Listed ones start first; a file missing from the list (or a list gone stale) only runs
 * in a worse place, nothing else changes.
 */
export const LONG_FILES = [
  "test/e2e/start.test.ts",
  "services/dispatcher/test/markers.test.ts",
  "test/faults/scheduler-batch-crash.test.ts",
  "services/dispatcher/test/crash.test.ts",
  "test/faults/nats-outage.test.ts",
  "test/faults/scheduler-crash.test.ts",
  "test/faults/dispatcher-crash.test.ts",
  "test/e2e/retraining.test.ts",
  "test/e2e/console.test.ts",
  "services/scheduler/test/scheduler.test.ts",
  "test/faults/hook-refusal.test.ts",
  "services/dispatcher/test/processes.test.ts",
  "test/faults/provider-throttle.test.ts",
  "test/e2e/channels.test.ts",
  "services/dispatcher/test/delivery.test.ts",
  "test/faults/cluster-leader.test.ts",
  "services/scheduler/test/processes.test.ts",
  "test/faults/hook-hang.test.ts",
  "packages/service-kit/test/provision-retry.test.ts",
  "test/harness/test/cluster.test.ts",
];

/** Known long files first (in LONG_FILES' order), then the rest larger first, as vitest would. */
export function longestFirst(paths: readonly string[], sizeOf: (path: string) => number): string[] {
  const rank = (path: string) => {
    const at = LONG_FILES.indexOf(path);
    return at < 0 ? LONG_FILES.length : at;
  };
  return [...paths].sort(
    (a, b) => rank(a) - rank(b) || sizeOf(b) - sizeOf(a) || (a < b ? -1 : a > b ? 1 : 0),
  );
}

/**
 * vitest's sequencer with the known long files first. Files with cached results (a local run
 * after the first) keep vitest's own order: failed first, then longest by the last run.
 */
export default class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const cached = files.every((f) =>
      this.ctx.cache.getFileTestResults(`${f.project.name}:${relative(root, f.moduleId)}`),
    );
    if (cached) return super.sort(files);
    const byPath = new Map(files.map((f) => [relative(root, f.moduleId), f]));
    const sizeOf = (path: string) => {
      try {
        return statSync(byPath.get(path)!.moduleId).size;
      } catch {
        return 0;
      }
    };
    return longestFirst([...byPath.keys()], sizeOf).map((path) => byPath.get(path)!);
  }
}
