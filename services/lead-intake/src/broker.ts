import type { Topology } from "@followup/contracts";
import { isNoMessages } from "@followup/service-kit";
import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type StoredMsg,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { BrokerUnavailableError } from "./errors.js";

/** What the routes use of JetStream once NATS is connected and the topology provisioned. */
export interface BrokerHandles {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  topology: Topology;
  leads: KV;
  plans: KV;
  receipts: KV;
  sequences: KV;
  templates: KV;
  channels: KV;
  suppressions: KV;
  models: KV;
}

/**
 * The link to NATS, which may come and go while the HTTP server keeps answering: lead-intake
 * starts before NATS is reachable and stays up through outages. Routes ask for the handles and
 * get a BrokerUnavailableError (503) at once while there are none, instead of waiting for a
 * publish to time out.
 */
export class Broker {
  readonly topology: Topology;
  readonly #timeoutMs: number;
  #handles: BrokerHandles | undefined;
  #connected = false;
  #reason = "connecting to NATS";
  readonly #listeners = new Set<(available: boolean, reason?: string) => void>();

  constructor(topology: Topology, options: { timeoutMs: number }) {
    this.topology = topology;
    this.#timeoutMs = options.timeoutMs;
  }

  /** Binds to a connected NATS whose topology is provisioned; follows its connection status after. */
  async attach(nc: NatsConnection): Promise<void> {
    const js = jetstream(nc, { timeout: this.#timeoutMs });
    const jsm = await jetstreamManager(nc, { timeout: this.#timeoutMs });
    const kvm = new Kvm(js);
    const { buckets } = this.topology;
    const [leads, plans, receipts, sequences, templates, channels, suppressions, models] = await Promise.all([
      kvm.open(buckets.leads.bucket),
      kvm.open(buckets.plans.bucket),
      kvm.open(buckets.receipts.bucket),
      kvm.open(buckets.sequences.bucket),
      kvm.open(buckets.templates.bucket),
      kvm.open(buckets.channels.bucket),
      kvm.open(buckets.suppressions.bucket),
      kvm.open(buckets.models.bucket),
    ]);
    this.#handles = {
      nc,
      js,
      jsm,
      topology: this.topology,
      leads,
      plans,
      receipts,
      sequences,
      templates,
      channels,
      suppressions,
      models,
    };
    this.#setConnected(!nc.isClosed(), "NATS connection closed");
    void this.#follow(nc);
  }

  async #follow(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") this.#setConnected(false, "NATS disconnected; reconnecting");
      else if (status.type === "reconnect") this.#setConnected(true);
      else if (status.type === "close") this.#setConnected(false, "NATS connection closed");
    }
  }

  #setConnected(connected: boolean, reason?: string): void {
    this.#connected = connected;
    if (!connected && reason) this.#reason = reason;
    for (const listener of this.#listeners) listener(this.available, connected ? undefined : this.#reason);
  }

  /** Called with the availability on every change (for readiness and a metric). */
  onChange(listener: (available: boolean, reason?: string) => void): void {
    this.#listeners.add(listener);
  }

  /** Records why NATS is not usable yet (connecting, provisioning failed, ...). */
  setReason(reason: string): void {
    if (!this.available) this.#reason = reason;
  }

  get available(): boolean {
    return this.#handles !== undefined && this.#connected;
  }

  /** Why the broker is unavailable; undefined when it is available. */
  get reason(): string | undefined {
    return this.available ? undefined : this.#reason;
  }

  /** The handles, or a BrokerUnavailableError naming why there are none. */
  handles(): BrokerHandles {
    if (this.#handles === undefined || !this.#connected) throw new BrokerUnavailableError(this.#reason);
    return this.#handles;
  }
}

/** The messages of `stream` on `subject` (wildcards allowed), oldest first, at most `limit`. */
export async function readSubject(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  limit: number,
): Promise<StoredMsg[]> {
  const messages: StoredMsg[] = [];
  try {
    const batch = await jsm.direct.getBatch(stream, { seq: 1, next_by_subj: subject, batch: limit });
    for await (const message of batch) {
      messages.push(message);
      if (messages.length >= limit) break;
    }
  } catch (err) {
    // The server answers "no results" when nothing matches: an empty list, not a failure.
    if (!isNoMessages(err)) throw err;
  }
  return messages;
}

/** Messages asked for in one direct batch get while paging. */
const PAGE = 1000;

/**
 * The messages of `stream` on `subject` (wildcards allowed) from a sequence or a time on, oldest
 * first, page by page (direct batch gets, so no consumer is made), at most `max`. Say `more` when
 * it stopped at `max` with messages left.
 */
export async function readSubjectPages(
  jsm: JetStreamManager,
  stream: string,
  options: { subject: string; since?: Date; max: number },
): Promise<{ messages: StoredMsg[]; more: boolean }> {
  const messages: StoredMsg[] = [];
  let from: { seq: number } | { start_time: Date } = options.since
    ? { start_time: options.since }
    : { seq: 1 };
  for (;;) {
    let page = 0;
    try {
      const batch = await jsm.direct.getBatch(stream, {
        ...from,
        next_by_subj: options.subject,
        batch: PAGE,
      });
      for await (const message of batch) {
        page += 1;
        if (messages.length === options.max) return { messages, more: true };
        messages.push(message);
        from = { seq: message.seq + 1 };
      }
    } catch (err) {
      if (!isNoMessages(err)) throw err;
    }
    if (page < PAGE) return { messages, more: false };
  }
}
