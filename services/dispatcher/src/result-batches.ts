import {
  ATOMIC_BATCH_MAX,
  holdLinesForTurn,
  isAtomicBatchRejected,
  publishAtomic,
  publishHeaders,
} from "@followup/service-kit";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { MsgHdrs, Payload } from "@nats-io/transport-node";
import type { Logger } from "pino";

/** Where the dispatcher stores what an attempt ended with: resolves once the message is stored. */
export interface ResultPublisher {
  publish(subject: string, data: Uint8Array, msgId: string): Promise<void>;
}

const PUBLISH_TIMEOUT_MS = 5_000;

/**
 * How long a result waits for company by default (RESULT_BATCH_WINDOW_MS). A result is stored
 * after its call, so the wait holds back only its marker's ack, and every batch costs nats-server
 * a staging directory and its fsyncs whatever its size: 25 ms instead of 5 took about a tenth off
 * nats-server's CPU per follow-up in a burst of 20k (docs/benchmarks.md, "Result batches").
 */
export const RESULT_BATCH_WINDOW_MS = 25;
/** A next step's timer is stored before its step's call, so its batch waits only briefly. */
export const NEXT_TIMER_WINDOW_MS = 5;

/** One message at a time, each its own fsync'd write: for streams written rarely (dead letters). */
export function singlePublisher(js: JetStreamClient): ResultPublisher {
  return {
    async publish(subject, data, msgID) {
      await js.publish(subject, data, { msgID, timeout: PUBLISH_TIMEOUT_MS });
    },
  };
}

/** A message for a batch. Its headers are made anew for each use: a batch adds its own to them. */
export interface BatchedMessage {
  subject: string;
  data: Payload;
  headers: () => MsgHdrs;
}

interface Pending extends BatchedMessage {
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface ResultBatchOptions {
  js: JetStreamClient;
  logger: Logger;
  /** How long the first result of a batch waits for others (RESULT_BATCH_WINDOW_MS). */
  windowMs: number;
  /** Results per batch at most (the server allows 1000). */
  maxBatch?: number;
  /** Batches committing at once (the server allows 50 per stream). */
  inFlight?: number;
  /** Told the size of each batch stored, and whether it fell back to single publishes. */
  onBatch?: (size: number, fellBack: boolean) => void;
  /**
   * A single publish's error that means the message is stored already, so its caller goes on
   * (a timer's subject that holds one: expected last subject sequence 0). A repeated
   * Nats-Msg-Id is no error: the server acknowledges it as a duplicate.
   */
  storedAlready?: (err: unknown) => boolean;
  /** What the batches are of, in the log line of a refused batch: result, timer. */
  what?: string;
}

/**
 * Results gathered into atomic batches (one stream: FOLLOWUP_RESULTS): at sync_interval always
 * every publish costs the stream an fsync, serially, while a batch of up to 1000 is committed with
 * a few (jetstream-facts 9, 10). A result waits at most `windowMs` for company, or less when a
 * batch fills; while batches are committing, new results gather for the next one, so under load
 * batches grow by themselves and an idle system pays only the window.
 *
 * Each caller's promise resolves once its own message is stored, so the caller acks its marker or
 * due message only after that (a crash before redelivers it; its result's Nats-Msg-Id then makes
 * the second store a duplicate). A batch the server refuses as a whole (a repeated Nats-Msg-Id:
 * a result stored before a crash, within the duplicate window) is published again message by
 * message, where a duplicate is simply dropped. A batch whose commit times out rejects its callers,
 * who retry as after any failed publish.
 */
export class ResultBatches implements ResultPublisher {
  readonly #options: ResultBatchOptions;
  readonly #maxBatch: number;
  readonly #inFlightLimit: number;
  #pending: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  #windowDone = false;
  #inFlight = 0;

  constructor(options: ResultBatchOptions) {
    this.#options = options;
    this.#maxBatch = Math.min(ATOMIC_BATCH_MAX, options.maxBatch ?? ATOMIC_BATCH_MAX);
    this.#inFlightLimit = options.inFlight ?? 4;
  }

  publish(subject: string, data: Uint8Array, msgId: string): Promise<void> {
    return this.publishMessage({ subject, data, headers: () => publishHeaders({ msgId }) });
  }

  /** Stores a message with the headers it brings (a timer's TTL and expected sequence). */
  publishMessage(message: BatchedMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ ...message, resolve, reject });
      if (this.#pending.length >= this.#maxBatch) this.#windowDone = true;
      else this.#timer ??= setTimeout(() => this.#windowEnded(), this.#options.windowMs);
      this.#pump();
    });
  }

  #windowEnded(): void {
    this.#timer = undefined;
    this.#windowDone = true;
    this.#pump();
  }

  #pump(): void {
    while (this.#windowDone && this.#pending.length > 0 && this.#inFlight < this.#inFlightLimit) {
      const batch = this.#pending.splice(0, this.#maxBatch);
      if (this.#pending.length === 0) {
        this.#windowDone = false;
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      this.#inFlight++;
      void this.#store(batch).finally(() => {
        this.#inFlight--;
        // What gathered while this batch committed has waited long enough.
        if (this.#pending.length > 0) this.#windowDone = true;
        this.#pump();
      });
    }
  }

  async #store(batch: Pending[]): Promise<void> {
    if (batch.length === 1) {
      this.#options.onBatch?.(1, false);
      return this.#storeOne(batch[0]!);
    }
    try {
      await publishAtomic(
        this.#options.js,
        batch.map((p) => ({ subject: p.subject, data: p.data, headers: p.headers() })),
        { timeoutMs: PUBLISH_TIMEOUT_MS },
      );
    } catch (err) {
      if (!isAtomicBatchRejected(err)) {
        for (const p of batch) p.reject(err);
        return;
      }
      this.#options.logger.info(
        { size: batch.length, err: err.message },
        `${this.#options.what ?? "result"}_batch_refused_publishing_singly`,
      );
      this.#options.onBatch?.(batch.length, true);
      await Promise.all(batch.map((p) => this.#storeOne(p)));
      return;
    }
    this.#options.onBatch?.(batch.length, false);
    // Each caller logs its line as it goes on: the batch's lines are written together.
    holdLinesForTurn(this.#options.logger);
    for (const p of batch) p.resolve();
  }

  async #storeOne(p: Pending): Promise<void> {
    try {
      await this.#options.js.publish(p.subject, p.data, {
        headers: p.headers(),
        timeout: PUBLISH_TIMEOUT_MS,
      });
      p.resolve();
    } catch (err) {
      if (this.#options.storedAlready?.(err)) p.resolve();
      else p.reject(err);
    }
  }
}
