// docs/operations.md is the operator's reference: it must name every variable each service reads
// and every metric each service exposes, so a new setting or metric cannot go undocumented.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createMetricsRegistry } from "@followup/service-kit";
import { describe, expect, it } from "vitest";
import { dispatcherEnv } from "../../services/dispatcher/src/config.js";
import { createDispatcherMetrics } from "../../services/dispatcher/src/metrics.js";
import { leadIntakeEnv } from "../../services/lead-intake/src/config.js";
import { createLeadIntakeMetrics } from "../../services/lead-intake/src/metrics.js";
import { schedulerEnv } from "../../services/scheduler/src/config.js";
import { createSchedulerMetrics } from "../../services/scheduler/src/metrics.js";
import { REPO_ROOT } from "../support/index.js";

const runbook = readFileSync(join(REPO_ROOT, "docs/operations.md"), "utf8");

/** The metrics a service declares itself (its registry minus the default process metrics). */
function ownMetrics(declare: (registry: ReturnType<typeof createMetricsRegistry>) => unknown): string[] {
  const registry = createMetricsRegistry("runbook");
  const defaults = new Set(registry.getMetricsAsArray().map((m) => m.name));
  declare(registry);
  return registry
    .getMetricsAsArray()
    .map((m) => m.name)
    .filter((name) => !defaults.has(name));
}

describe("docs/operations.md", () => {
  it.each([
    ["lead-intake", leadIntakeEnv],
    ["scheduler", schedulerEnv],
    ["dispatcher", dispatcherEnv],
  ])("names every variable %s reads", (_service, shape) => {
    const missing = Object.keys(shape).filter((variable) => !runbook.includes(`\`${variable}\``));
    expect(missing, "variables missing from the configuration reference").toEqual([]);
  });

  it.each([
    ["lead-intake", createLeadIntakeMetrics],
    ["scheduler", createSchedulerMetrics],
    ["dispatcher", createDispatcherMetrics],
  ] as const)("names every metric %s exposes", (_service, declare) => {
    const metrics = ownMetrics((registry) => declare(registry));
    expect(metrics.length).toBeGreaterThan(3);
    const missing = metrics.filter((name) => !runbook.includes(`\`${name}`));
    expect(missing, "metrics missing from the metrics reference").toEqual([]);
  });
});
