import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** lead-intake's metrics, declared in one place and registered on the service's registry. */
export function createLeadIntakeMetrics(registry: Registry) {
  const registers = [registry];
  return {
    httpDuration: new Histogram({
      name: "http_request_duration_seconds",
      help: "HTTP request duration by method, route pattern (never the raw URL) and status",
      labelNames: ["method", "route", "status"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    predProb: new Histogram({
      name: "lead_pred_prob",
      help: "Conversion probability (pred_prob) of accepted leads",
      buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
      registers,
    }),
    enrich: new Counter({
      name: "lead_enrich_total",
      help: "Accepted leads by enrichment: intent, urgency, sentiment",
      labelNames: ["intent", "urgency", "sentiment"] as const,
      registers,
    }),
    accepted: new Counter({
      name: "leads_accepted_total",
      help: "Leads stored and published (POST /v1/lead answered 2xx)",
      registers,
    }),
    rejected: new Counter({
      name: "leads_rejected_total",
      help: "POST /v1/lead refused, by reason (the error code: validation_error, invalid_json, unauthorized, service_unavailable, ...)",
      labelNames: ["reason"] as const,
      registers,
    }),
    hooks: new Counter({
      name: "followup_hooks_received_total",
      help: "Follow-ups received by the hook receiver, by auth (signature, api_key) and whether the webhook-id was seen before",
      labelNames: ["auth", "duplicate"] as const,
      registers,
    }),
    outboxDepth: new Gauge({
      name: "lead_intake_outbox_depth",
      help: "Leads accepted while JetStream could not take them, waiting in the local outbox",
      registers,
    }),
    outboxCapacity: new Gauge({
      name: "lead_intake_outbox_max_leads",
      help: "OUTBOX_MAX_LEADS: at this depth new leads are refused with 503",
      registers,
    }),
    outboxQueued: new Counter({
      name: "lead_intake_outbox_queued_total",
      help: "Leads written to the local outbox (POST /v1/lead answered 202 queued: local)",
      registers,
    }),
    outboxDrained: new Counter({
      name: "lead_intake_outbox_drained_total",
      help: "Leads from the local outbox stored and published once NATS was back",
      registers,
    }),
    outboxUnreadable: new Counter({
      name: "lead_intake_outbox_unreadable_total",
      help: "Outbox entries that could not be read and were set aside (*.unreadable) for an operator",
      registers,
    }),
    degraded: new Gauge({
      name: "lead_intake_degraded",
      help: "1 while leads go to the local outbox (NATS unavailable or the outbox not yet drained), else 0",
      registers,
    }),
    natsAvailable: new Gauge({
      name: "lead_intake_nats_available",
      help: "1 while NATS is connected and the topology provisioned, 0 while lead-intake runs degraded",
      registers,
    }),
  };
}

export type LeadIntakeMetrics = ReturnType<typeof createLeadIntakeMetrics>;
