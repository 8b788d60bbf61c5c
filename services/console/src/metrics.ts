import { Counter, Gauge, type Registry } from "prom-client";

/** The console's own metrics, declared in one place. */
export function createConsoleMetrics(registry: Registry) {
  return {
    upstreamRequests: new Counter({
      name: "console_upstream_requests_total",
      help: "Requests the console passed to lead-intake, by the status lead-intake answered",
      labelNames: ["status"] as const,
      registers: [registry],
    }),
    liveStreams: new Gauge({
      name: "console_live_streams",
      help: "Live lead streams (server-sent events) open now",
      registers: [registry],
    }),
  };
}

export type ConsoleMetrics = ReturnType<typeof createConsoleMetrics>;
