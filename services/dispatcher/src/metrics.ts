import { type ConsumerLag, consumerLagMetrics, metricsOn } from "@followup/service-kit";
import type { Registry } from "prom-client";

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const LATENESS_BUCKETS = [...DURATION_BUCKETS, 60, 300, 1800, 3600];

export interface DispatcherMetricSources {
  /** The lag of the dispatcher's consumers (dispatcher-markers, dispatcher). */
  consumerLag?: () => Promise<ConsumerLag[]>;
}

/** The dispatcher's metrics, declared in one place and registered on the service's registry. */
export function createDispatcherMetrics(registry: Registry, sources: DispatcherMetricSources = {}) {
  const metric = metricsOn(registry);
  return {
    ...consumerLagMetrics(registry, sources.consumerLag),
    // Named as the system it replaces named it (jobs, strategy), for its dashboards.
    attempts: metric.counter(
      "followup_jobs_total",
      "Delivery attempts by strategy (<delay>s) and result: ok, error (will retry) or dead",
      ["strategy", "result"],
    ),
    duration: metric.histogram(
      "followup_delivery_duration_seconds",
      "Duration of one channel call, by channel and result",
      DURATION_BUCKETS,
      ["channel", "result"],
    ),
    messages: metric.counter(
      "followup_messages_total",
      "Follow-up messages by channel, provider (the hook's is hook) and result: sent, retried, failed (dead-lettered) or suppressed (the recipient opted out; nothing sent)",
      ["channel", "provider", "result"],
    ),
    providerDuration: metric.histogram(
      "followup_provider_request_duration_seconds",
      "Duration of one provider call (Twilio, SendGrid, SMTP, Slack), by channel, provider and result",
      DURATION_BUCKETS,
      ["channel", "provider", "result"],
    ),
    effects: metric.counter(
      "followup_provider_effects_total",
      "What a provider's refusal did beyond its follow-up, by effect: suppress_recipient (Twilio 21610), mark_channel_broken (Slack 403, 404, 410)",
      ["channel", "effect"],
    ),
    lateness: metric.histogram(
      "followup_delivery_lateness_seconds",
      "Delivery time minus due_at for delivered follow-ups (replays from the dead letters excluded: their lateness is the operator's)",
      LATENESS_BUCKETS,
    ),
    inFlight: metric.gauge("followup_deliveries_in_flight", "Channel calls in flight"),
    retries: metric.counter(
      "followup_retries_total",
      "Failed attempts that will be retried, by reason: status_5xx, status_408, status_429, timeout, connection, smtp_4xx, quiet_hours",
      ["reason"],
    ),
    deadLetters: metric.counter(
      "followup_dead_letters_total",
      "Follow-ups moved to the dead letters, by reason: permanent or exhausted",
      ["reason"],
    ),
    stopped: metric.counter(
      "followups_stopped_at_delivery_total",
      "Due follow-ups acknowledged without delivery because they stopped, by reason: outcome, cancelled, lead_missing, plan_missing (a marker whose plan stayed unreadable)",
      ["reason"],
    ),
    invalidEvents: metric.counter(
      "dispatcher_invalid_events_total",
      "Due messages that broke their contract and were terminated",
    ),
    resultBatches: metric.histogram(
      "dispatcher_result_batch_size",
      "Results stored per atomic batch, by whether the batch was refused and published one by one (fell_back)",
      [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      ["fell_back"],
    ),
    readBatches: metric.histogram(
      "dispatcher_kv_read_batch_size",
      "Keys read per batched direct get, by bucket (plans and leads, one each per marker)",
      [1, 2, 5, 10, 25, 50, 100, 256],
      ["bucket"],
    ),
    released: metric.counter(
      "dispatcher_released_total",
      "Due messages handed back undelivered for redelivery, by reason: shutdown, not_due, broker",
      ["reason"],
    ),
  };
}

export type DispatcherMetrics = ReturnType<typeof createDispatcherMetrics>;
