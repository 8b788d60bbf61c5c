import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export interface MetricSources {
  /** Messages in FOLLOWUP_TIMERS: timers not yet expired plus markers not yet handled. */
  timersPending?: () => Promise<number>;
}

const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600];

/** The scheduler's metrics, declared in one place and registered on the service's registry. */
export function createSchedulerMetrics(registry: Registry, sources: MetricSources = {}) {
  const registers = [registry];
  return {
    scheduled: new Counter({
      name: "followups_scheduled_total",
      help: "Follow-up steps whose timers were stored (one per delay of a qualifying lead)",
      registers,
    }),
    due: new Counter({
      name: "followups_due_total",
      help: "Follow-ups published to the work queue as due",
      registers,
    }),
    cancelled: new Counter({
      name: "followups_cancelled_total",
      help: "Follow-ups stopped by an outcome or cancellation, by stage: pending (timer or marker) or queued (a due message purged before delivery)",
      labelNames: ["stage"] as const,
      registers,
    }),
    skipped: new Counter({
      name: "followups_skipped_total",
      help: "Leads that got no follow-ups, by reason: below_threshold, disabled, empty_schedule, stopped (an outcome came first)",
      labelNames: ["reason"] as const,
      registers,
    }),
    timersPending: new Gauge({
      name: "followup_timers_pending",
      help: "Messages in FOLLOWUP_TIMERS (timers not yet expired and markers not yet handled), read from the stream on scrape",
      registers,
      async collect() {
        if (!sources.timersPending) return;
        try {
          this.set(await sources.timersPending());
        } catch {
          // The broker is unreachable: keep the last value; readiness says why.
        }
      },
    }),
    markerToDue: new Histogram({
      name: "followup_marker_to_due_seconds",
      help: "From receiving a timer's expiry marker to publishing its due follow-up (includes the hold until due_at)",
      buckets: SECONDS_BUCKETS,
      registers,
    }),
    dueLateness: new Histogram({
      name: "followup_due_lateness_seconds",
      help: "Due publish time minus due_at (never negative: nothing is published before due_at)",
      buckets: SECONDS_BUCKETS,
      registers,
    }),
    invalidEvents: new Counter({
      name: "scheduler_invalid_events_total",
      help: "Messages that broke their contract and were terminated, by consumer",
      labelNames: ["consumer"] as const,
      registers,
    }),
    retries: new Counter({
      name: "scheduler_retries_total",
      help: "Messages handed back for a later retry after a broker failure, by consumer",
      labelNames: ["consumer"] as const,
      registers,
    }),
  };
}

export type SchedulerMetrics = ReturnType<typeof createSchedulerMetrics>;
