import {
  encodeEvent,
  type LeadOutcome,
  type LeadScored,
  type StoredLead,
  subjects,
} from "@followup/contracts";
import { JetStreamError } from "@nats-io/jetstream";
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  InvalidOperationError,
  NoRespondersError,
  PermissionViolationError,
  ProtocolError,
  RequestError,
  TimeoutError,
} from "@nats-io/transport-node";
import type { Broker } from "./broker.js";
import { BrokerUnavailableError } from "./errors.js";
import { createLead } from "./leads-store.js";

/**
 * The one seam through which lead-intake hands leads and their events to the broker. Each
 * method returns once JetStream has acknowledged, and throws BrokerUnavailableError when NATS
 * is unreachable or does not acknowledge within the publish timeout. A durable local outbox
 * (fail-open) is another implementation of this interface, so routes do not change for it.
 */
export interface EventPublisher {
  /** Stores the new lead (KV `leads`) and publishes its `lead.scored`. */
  publishLeadScored(lead: StoredLead, event: LeadScored): Promise<void>;
  /** Publishes `lead.outcome` for a lead whose outcome is already recorded. */
  publishLeadOutcome(lead: StoredLead, event: LeadOutcome): Promise<void>;
}

const BROKER_ERRORS = [
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  InvalidOperationError,
  NoRespondersError,
  PermissionViolationError,
  ProtocolError,
  RequestError,
  TimeoutError,
  JetStreamError,
];

/** Whether an error comes from NATS or JetStream (not from our own code). */
export function isBrokerError(err: unknown): boolean {
  if (BROKER_ERRORS.some((type) => err instanceof type)) return true;
  // JetStreamApiError extends Error, not JetStreamError.
  return err instanceof Error && /^JetStream/.test(err.name);
}

/**
 * Runs a broker operation; a NATS or JetStream failure of it becomes a BrokerUnavailableError
 * (503) with the reason. Anything else (a bug, a broken record) stays what it is: a 500.
 */
export async function onBroker<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    if (!isBrokerError(err)) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new BrokerUnavailableError(`${what} failed: ${reason}`, { cause: err });
  }
}

export class JetStreamPublisher implements EventPublisher {
  readonly #broker: Broker;
  readonly #timeoutMs: number;

  constructor(broker: Broker, options: { timeoutMs: number }) {
    this.#broker = broker;
    this.#timeoutMs = options.timeoutMs;
  }

  async publishLeadScored(lead: StoredLead, event: LeadScored): Promise<void> {
    const { leads, js, topology } = this.#broker.handles();
    await onBroker("storing the lead", () => createLead(leads, lead));
    await onBroker("publishing lead.scored", () =>
      js.publish(subjects.leadScored(lead.tenant, lead.lead_id), encodeEvent(event), {
        msgID: event.id,
        timeout: this.#timeoutMs,
        expect: { streamName: topology.streams.leads.name },
      }),
    );
  }

  async publishLeadOutcome(lead: StoredLead, event: LeadOutcome): Promise<void> {
    const { js, topology } = this.#broker.handles();
    await onBroker("publishing lead.outcome", () =>
      js.publish(subjects.leadOutcome(lead.tenant, lead.lead_id), encodeEvent(event), {
        msgID: event.id,
        timeout: this.#timeoutMs,
        expect: { streamName: topology.streams.leads.name },
      }),
    );
  }
}
