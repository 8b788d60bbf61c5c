import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The dispatcher's metrics, declared in one place and registered on the service's registry. */
export function createDispatcherMetrics(registry: Registry) {
  const registers = [registry];
  return {
    jobs: new Counter({
      name: "followup_jobs_total",
      help: "Delivery attempts by strategy (<delay>s) and result: ok, error (will retry) or dead",
      labelNames: ["strategy", "result"] as const,
      registers,
    }),
    duration: new Histogram({
      name: "followup_delivery_duration_seconds",
      help: "Duration of one channel call, by channel and result",
      labelNames: ["channel", "result"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    lateness: new Histogram({
      name: "followup_delivery_lateness_seconds",
      help: "Delivery time minus due_at for delivered follow-ups (replays from the dead letters excluded: their lateness is the operator's)",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600],
      registers,
    }),
    inFlight: new Gauge({
      name: "followup_deliveries_in_flight",
      help: "Channel calls in flight",
      registers,
    }),
    retries: new Counter({
      name: "followup_retries_total",
      help: "Failed attempts that will be retried, by reason: status_5xx, status_408, status_429, timeout, connection",
      labelNames: ["reason"] as const,
      registers,
    }),
    deadLetters: new Counter({
      name: "followup_dead_letters_total",
      help: "Follow-ups moved to the dead letters, by reason: permanent or exhausted",
      labelNames: ["reason"] as const,
      registers,
    }),
    skipped: new Counter({
      name: "followups_skipped_total",
      help: "Due follow-ups acknowledged without delivery, by reason: outcome, cancelled, lead_missing",
      labelNames: ["reason"] as const,
      registers,
    }),
    invalidEvents: new Counter({
      name: "dispatcher_invalid_events_total",
      help: "Due messages that broke their contract and were terminated",
      registers,
    }),
    released: new Counter({
      name: "dispatcher_released_total",
      help: "Due messages handed back undelivered for redelivery, by reason: shutdown, not_due, broker",
      labelNames: ["reason"] as const,
      registers,
    }),
  };
}

export type DispatcherMetrics = ReturnType<typeof createDispatcherMetrics>;
