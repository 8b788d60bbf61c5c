import {
  encodeEvent,
  type LeadOutcome,
  type LeadScored,
  type StoredLead,
  subjects,
} from "@followup/contracts";
import { isWrongLastSequence } from "@followup/service-kit";
import type { Broker } from "../broker.js";
import type { EventPublisher, LeadQueued } from "../deps.js";
import { onBroker } from "../errors.js";
import { createLead } from "./leads-store.js";

/** The `source` of every event lead-intake publishes. */
export const SOURCE = "/lead-intake";

export class JetStreamPublisher implements EventPublisher {
  readonly #broker: Broker;
  readonly #timeoutMs: number;

  constructor(broker: Broker, options: { timeoutMs: number }) {
    this.#broker = broker;
    this.#timeoutMs = options.timeoutMs;
  }

  /**
   * Idempotent, so the outbox can run it again after a crash or a timeout: a lead already
   * stored under its key is ours (lead ids are fresh UUIDv7s), and the event keeps its id as
   * Nats-Msg-Id, so the stream drops a second copy inside its duplicate window (and after it,
   * the scheduler's plan for the lead schedules nothing twice).
   *
   * The two writes go out together rather than one after the other: each is an fsync'd round
   * trip, and in sequence they halved intake (docs/benchmarks.md, I1). Neither needs the other
   * first: the scheduler plans from the event alone and reads the lead only at a follow-up's due
   * time (the dispatcher too, before its call), where a missing lead stops the follow-up rather
   * than sending it. So a `lead.scored` that lands before its lead, or whose lead write failed
   * and waits in the outbox, is harmless: by the due time the lead is there, and if it never
   * is, nothing is sent for it. Both are awaited before the caller hears anything: the 2xx
   * still means both are acknowledged, and a failure of either (the other may have landed)
   * sends the whole lead to the outbox, whose retry of both is idempotent as above. The
   * outbox's drain keeps its own batched store-then-publish.
   */
  async publishLeadScored(lead: StoredLead, event: LeadScored): Promise<LeadQueued> {
    const [stored, published] = await Promise.allSettled([
      this.storeLead(lead),
      this.publishScored(lead, event),
    ]);
    if (stored.status === "rejected") throw stored.reason;
    if (published.status === "rejected") throw published.reason;
    return "published";
  }

  /** The first half of publishLeadScored: the lead in the `leads` bucket (already there is fine). */
  async storeLead(lead: StoredLead): Promise<void> {
    const { leads } = this.#broker.handles();
    await onBroker("storing the lead", async () => {
      try {
        await createLead(leads, lead);
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
      }
    });
  }

  /**
   * The second half: `lead.scored`. The message is written to the connection before this returns
   * its promise, so calls made one after another reach the stream in that order.
   */
  async publishScored(lead: StoredLead, event: LeadScored): Promise<void> {
    await this.#publish("publishing lead.scored", subjects.leadScored(lead.tenant, lead.lead_id), event);
  }

  async publishLeadOutcome(lead: StoredLead, event: LeadOutcome): Promise<void> {
    await this.#publish("publishing lead.outcome", subjects.leadOutcome(lead.tenant, lead.lead_id), event);
  }

  /** One event onto LEADS, its id as Nats-Msg-Id (the stream drops a second copy). */
  async #publish(what: string, subject: string, event: LeadScored | LeadOutcome): Promise<void> {
    const { js, topology } = this.#broker.handles();
    await onBroker(what, () =>
      js.publish(subject, encodeEvent(event), {
        msgID: event.id,
        timeout: this.#timeoutMs,
        expect: { streamName: topology.streams.leads.name },
      }),
    );
  }
}
