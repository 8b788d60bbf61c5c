import { collectDefaultMetrics, Registry } from "prom-client";

/**
 * One registry per service (never prom-client's global one), so two services can run in one
 * process in tests. Default metrics (CPU, memory, event loop lag, GC) come with it.
 */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}
