import { decodeEvent, type EventOf, parseLeadSubject, type Topology } from "@followup/contracts";
import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { InvalidEvent } from "./consumer.js";
import type { SchedulerMetrics } from "./metrics.js";
import type { PlanStore } from "./plans.js";

/** What every handler of the scheduler's consumers is given; scheduler.ts builds it once. */
export interface HandlerDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  plans: PlanStore;
  leads: KV;
  topology: Topology;
  metrics: SchedulerMetrics;
  logger: Logger;
  now: () => Date;
}

const KIND = {
  "lead.scored.v1": "scored",
  "lead.outcome.v1": "outcome",
  "lead.enrolled.v1": "enrolled",
  "lead.unenrolled.v1": "unenrolled",
} as const;

/** Decodes a lead event and checks it against its subject: an event on another lead's subject is invalid. */
export function decodeLeadEvent<T extends keyof typeof KIND>(msg: JsMsg, type: T): EventOf<T> {
  const event = decodeEvent(type, msg.data);
  const ref = parseLeadSubject(msg.subject, KIND[type]);
  if (ref.tenant !== event.tenant || ref.leadId !== event.data.lead_id) {
    throw new InvalidEvent(
      `${type}: tenant/lead_id (${event.tenant}/${event.data.lead_id}) do not match the subject ${msg.subject}`,
    );
  }
  return event;
}
