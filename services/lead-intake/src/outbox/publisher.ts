import type { LeadOutcome, LeadScored, StoredLead } from "@followup/contracts";
import type { Logger, Readiness } from "@followup/service-kit";
import type { Broker } from "../broker.js";
import type { EventPublisher, LeadQueued, LocalOutbox, OutboxStatus } from "../deps.js";
import { BrokerUnavailableError } from "../errors.js";
import type { JetStreamPublisher } from "../leads/index.js";
import type { LeadIntakeMetrics } from "../metrics.js";
import { type LeadOutbox, type OutboxEntry, OutboxFullError, type OutboxSlot } from "./outbox.js";

export interface OutboxPublisherDeps {
  broker: Broker;
  /** What actually talks to JetStream. */
  direct: JetStreamPublisher;
  outbox: LeadOutbox;
  metrics: LeadIntakeMetrics;
  readiness: Readiness;
  logger: Logger;
  /** Pause before draining again after a failure. Default 1000 ms. */
  retryMs?: number;
  /** Leads published per round trip while draining. Default 128. */
  batchSize?: number;
}

/**
 * Fail-open without loss. A lead goes straight to JetStream while the outbox is empty and NATS
 * is available; when NATS is unreachable or does not acknowledge within PUBLISH_TIMEOUT_MS, the
 * lead is written to the durable outbox instead and the caller gets 202 `queued: local`. While
 * the outbox holds anything, every new lead joins it behind the others, so leads reach
 * JetStream strictly in the order they were accepted. When NATS is back the outbox is drained
 * one lead at a time, oldest first, through the same idempotent store-and-publish.
 *
 * Outcomes are not queued: recording one is a compare-and-set on the stored lead, which needs
 * JetStream (they stay 503 while it is down; see docs/reliability.md).
 */
export class OutboxPublisher implements EventPublisher, LocalOutbox {
  readonly #deps: OutboxPublisherDeps;
  readonly #retryMs: number;
  readonly #batchSize: number;
  #drain: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The entry whose non-broker failure was logged, so a stuck entry is logged once. */
  #reportedSeq: number | undefined;
  /** Whether the pause of draining was logged and no lead has been published since. */
  #pausedLogged = false;
  #degradedSince: number | undefined;
  #drainedThisRound = 0;

  constructor(deps: OutboxPublisherDeps) {
    this.#deps = deps;
    this.#retryMs = deps.retryMs ?? 1000;
    this.#batchSize = deps.batchSize ?? 128;
  }

  /** Follows the broker, drains what an earlier run left, and retries while anything waits. */
  start(): void {
    this.#deps.broker.onChange(() => {
      this.#refresh();
      this.#kick();
    });
    this.#timer = setInterval(() => this.#kick(), this.#retryMs);
    this.#timer.unref();
    if (this.#deps.outbox.depth > 0) {
      this.#degradedSince = Date.now();
      this.#deps.logger.warn(
        { queued: this.#deps.outbox.depth, dir: this.#deps.outbox.dir },
        "outbox_recovered_entries",
      );
    }
    this.#refresh();
    this.#kick();
  }

  /** Stops draining (the lead being published finishes) and releases the outbox. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#drain;
    await this.#deps.outbox.close();
  }

  async publishLeadScored(lead: StoredLead, event: LeadScored): Promise<LeadQueued> {
    const { broker, outbox, direct } = this.#deps;
    // Behind queued leads, or with NATS known to be down: straight to the outbox.
    if (outbox.depth === 0 && broker.available) {
      try {
        return await direct.publishLeadScored(lead, event);
      } catch (err) {
        if (!(err instanceof BrokerUnavailableError)) throw err;
        return this.#queue(lead, event, err.reason);
      }
    }
    return this.#queue(lead, event, broker.reason ?? "leads queued before it are not published yet");
  }

  publishLeadOutcome(lead: StoredLead, event: LeadOutcome): Promise<void> {
    return this.#deps.direct.publishLeadOutcome(lead, event);
  }

  status(): OutboxStatus {
    return {
      queued: this.#deps.outbox.depth,
      capacity: this.#deps.outbox.capacity,
      draining: this.#drain !== undefined,
    };
  }

  holds(tenant: string, leadId: string): boolean {
    return this.#deps.outbox.holds(tenant, leadId);
  }

  find(tenant: string, leadId: string): Promise<OutboxEntry | null> {
    return this.#deps.outbox.find(tenant, leadId);
  }

  async #queue(lead: StoredLead, event: LeadScored, reason: string): Promise<LeadQueued> {
    const { outbox, metrics, logger } = this.#deps;
    try {
      await outbox.append(lead, event);
    } catch (err) {
      this.#refresh();
      if (err instanceof OutboxFullError) throw new BrokerUnavailableError(`${reason}; and ${err.message}`);
      logger.error({ err, dir: outbox.dir, lead_id: lead.lead_id }, "outbox_write_failed");
      throw new BrokerUnavailableError(`${reason}; and the local outbox could not store the lead`, {
        cause: err,
      });
    }
    metrics.outboxQueued.inc();
    if (this.#degradedSince === undefined) {
      this.#degradedSince = Date.now();
      logger.warn({ reason, dir: outbox.dir }, "outbox_queueing_leads");
    }
    this.#refresh();
    this.#kick();
    return "local";
  }

  #kick(): void {
    if (this.#stopped || this.#drain !== undefined) return;
    if (this.#deps.outbox.depth === 0 || !this.#deps.broker.available) return;
    this.#drain = this.#drainRound().finally(() => {
      this.#drain = undefined;
      this.#refresh();
    });
    this.#refresh();
  }

  /**
   * Drains oldest first, a batch at a time, until the outbox is empty or JetStream fails: the
   * batch's leads are stored at once (their order does not matter), then their lead.scored
   * events are written to the connection one after another without waiting for each ack, so
   * they reach the stream in acceptance order at the speed of one round trip per batch rather
   * than two per lead. On one connection the server receives a prefix of what was sent, so
   * only a prefix of acknowledged events is removed; the rest is sent again (same Nats-Msg-Id).
   */
  async #drainRound(): Promise<void> {
    const { outbox, direct, broker, metrics, logger } = this.#deps;
    while (!this.#stopped && outbox.depth > 0) {
      if (!broker.available) return this.#pause(broker.reason ?? "NATS unavailable");
      const head = outbox.head();
      if (head === undefined) break;
      try {
        await head.written;
      } catch {
        continue; // the append failed and took its slot away; its caller got a 503
      }
      const batch: { slot: OutboxSlot; entry: OutboxEntry }[] = [];
      for (const slot of outbox.headBatch(this.#batchSize)) {
        const entry = await this.#read(slot);
        if (entry !== null) batch.push({ slot, entry });
      }
      if (batch.length === 0) continue;
      try {
        await Promise.all(batch.map(({ entry }) => direct.storeLead(entry.lead)));
      } catch (err) {
        return this.#failed(err, batch[0]!.slot);
      }
      const published = await Promise.allSettled(
        batch.map(({ entry }) => direct.publishScored(entry.lead, entry.event)),
      );
      const done = published.findIndex((result) => result.status === "rejected");
      const acknowledged = done < 0 ? batch : batch.slice(0, done);
      if (acknowledged.length > 0 && (this.#drainedThisRound === 0 || this.#pausedLogged)) {
        logger.info({ queued: outbox.depth }, "outbox_draining");
        this.#pausedLogged = false;
      }
      await Promise.all(acknowledged.map(({ slot }) => outbox.remove(slot)));
      metrics.outboxDrained.inc(acknowledged.length);
      this.#drainedThisRound += acknowledged.length;
      this.#refresh();
      if (done >= 0) {
        return this.#failed((published[done] as PromiseRejectedResult).reason, batch[done]!.slot);
      }
    }
    if (outbox.depth === 0 && this.#degradedSince !== undefined) {
      logger.info(
        { drained: this.#drainedThisRound, degraded_ms: Date.now() - this.#degradedSince },
        "outbox_drained",
      );
      this.#degradedSince = undefined;
      this.#drainedThisRound = 0;
    }
  }

  async #read(slot: OutboxSlot): Promise<OutboxEntry | null> {
    try {
      return await this.#deps.outbox.read(slot);
    } catch (err) {
      // Written whole and renamed into place, an entry is unreadable only if the disk failed or
      // someone edited it; set it aside for an operator rather than block every lead behind it.
      const kept = await this.#deps.outbox.setAside(slot).catch(() => slot.file);
      this.#deps.metrics.outboxUnreadable.inc();
      this.#deps.logger.error({ err, file: kept, lead_id: slot.leadId }, "outbox_entry_unreadable");
      return null;
    }
  }

  /** A broker failure pauses draining until the next try; anything else is logged once per lead. */
  #failed(err: unknown, slot: OutboxSlot): void {
    if (err instanceof BrokerUnavailableError) {
      this.#pause(err.reason);
    } else if (this.#reportedSeq !== slot.seq) {
      this.#reportedSeq = slot.seq;
      this.#deps.logger.error({ err, file: slot.file, lead_id: slot.leadId }, "outbox_publish_failed");
    }
  }

  #pause(reason: string): void {
    if (!this.#pausedLogged) {
      this.#pausedLogged = true;
      this.#deps.logger.warn(
        { reason, queued: this.#deps.outbox.depth, retry_in_ms: this.#retryMs },
        "outbox_drain_paused",
      );
    }
  }

  /** Keeps the depth gauge, the degraded gauge and the readiness check in step with the outbox. */
  #refresh(): void {
    const { outbox, broker, metrics, readiness } = this.#deps;
    const depth = outbox.depth;
    metrics.outboxDepth.set(depth);
    metrics.degraded.set(depth > 0 || !broker.available ? 1 : 0);
    if (depth === 0) readiness.set("outbox", true, "empty");
    else if (depth >= outbox.capacity) {
      readiness.set("outbox", false, `full: ${depth} leads queued locally; new leads are refused with 503`);
    } else {
      const doing = this.#drain !== undefined ? "draining" : "waiting for NATS";
      readiness.set("outbox", true, `${depth} of ${outbox.capacity} leads queued locally; ${doing}`);
    }
  }
}
