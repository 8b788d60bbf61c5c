import { type ConsumerLag, consumerLagMetrics, metricsOn } from "@followup/service-kit";
import type { Registry } from "prom-client";

/** The reports service's metrics, declared in one place. */
export function createReportsMetrics(
  registry: Registry,
  sources: { consumerLag?: () => Promise<ConsumerLag[]> } = {},
) {
  const metric = metricsOn(registry);
  return {
    ...consumerLagMetrics(registry, sources.consumerLag),
    eventsApplied: metric.counter(
      "reports_events_applied_total",
      "Events read into the conversion projection (redeliveries included), by durable",
      ["consumer"],
    ),
    leadsChanged: metric.counter(
      "reports_lead_records_changed_total",
      "Lead records of the projection an event changed (a redelivery changes none)",
    ),
    invalidEvents: metric.counter(
      "reports_invalid_events_total",
      "Messages that broke their contract, terminated, by durable",
      ["consumer"],
    ),
  };
}

export type ReportsMetrics = ReturnType<typeof createReportsMetrics>;
