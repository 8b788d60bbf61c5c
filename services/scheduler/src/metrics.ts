import { type ConsumerLag, consumerLagMetrics, metricsOn } from "@followup/service-kit";
import { Gauge, type Registry } from "prom-client";

export interface MetricSources {
  /** Messages in FOLLOWUP_TIMERS: timers not yet expired plus the markers of fired ones (kept until their TTL). */
  timersPending?: () => Promise<number>;
  /** The lag of the scheduler's consumers (scheduler-scored, scheduler-outcomes). */
  consumerLag?: () => Promise<ConsumerLag[]>;
}

/** The scheduler's metrics, declared in one place and registered on the service's registry. */
export function createSchedulerMetrics(registry: Registry, sources: MetricSources = {}) {
  const metric = metricsOn(registry);
  return {
    ...consumerLagMetrics(registry, sources.consumerLag),
    scheduled: metric.counter(
      "followups_scheduled_total",
      "Follow-up steps whose timers were stored (one per delay of a qualifying lead)",
    ),
    cancelled: metric.counter(
      "followups_cancelled_total",
      "Follow-ups stopped by an outcome or cancellation, by stage: pending (timer or marker) or queued (a due message purged before delivery)",
      ["stage"],
    ),
    skipped: metric.counter(
      "followups_skipped_total",
      "Leads that got no follow-ups, by reason: below_threshold, disabled, empty_schedule, stopped (an outcome came first), no_matching_sequence",
      ["reason"],
    ),
    timersPending: new Gauge({
      name: "followup_timers_pending",
      help: "Messages in FOLLOWUP_TIMERS (timers not yet expired, and the markers of fired ones until their TTL), read from the stream on scrape",
      registers: [registry],
      async collect() {
        if (!sources.timersPending) return;
        try {
          this.set(await sources.timersPending());
        } catch {
          // The broker is unreachable: keep the last value; readiness says why.
        }
      },
    }),
    invalidEvents: metric.counter(
      "scheduler_invalid_events_total",
      "Messages that broke their contract and were terminated, by consumer",
      ["consumer"],
    ),
    retries: metric.counter(
      "scheduler_retries_total",
      "Messages handed back for a later retry after a broker failure, by consumer",
      ["consumer"],
    ),
  };
}

export type SchedulerMetrics = ReturnType<typeof createSchedulerMetrics>;
