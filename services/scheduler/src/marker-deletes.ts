import { isMessageGone } from "@followup/service-kit";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Logger } from "pino";

/**
 * Deletes handled markers from the timer stream off the firing path. A marker is deleted only
 * after its step left `pending` in the plan and the marker was acked, so nothing waits for the
 * deletion: it only keeps the stream (and `followup_timers_pending`) to what is still to do. In a
 * burst, awaiting one JetStream API call per marker held a handler slot for a round trip behind
 * the due publishes (docs/benchmarks.md, B1); here a few deletions run at once, behind them.
 *
 * Bounded: at most `concurrency` calls outstanding and `maxQueued` markers waiting; past that,
 * `add` waits for room (back-pressure on the handlers, never unbounded memory). A marker whose
 * deletion fails, or is still queued at shutdown, stays until its own TTL
 * (subject_delete_marker_ttl): acked, it is never delivered again, and a timer published for
 * its step is refused by it (expect-last-subject-sequence 0), which is right, as its step is
 * no longer pending.
 */
export class MarkerDeletes {
  readonly #jsm: JetStreamManager;
  readonly #stream: string;
  readonly #logger: Logger;
  readonly #concurrency: number;
  readonly #maxQueued: number;
  readonly #queue: { seq: number; subject: string }[] = [];
  #running = 0;
  #waiters: (() => void)[] = [];

  constructor(options: {
    jsm: JetStreamManager;
    stream: string;
    logger: Logger;
    concurrency?: number;
    maxQueued?: number;
  }) {
    this.#jsm = options.jsm;
    this.#stream = options.stream;
    this.#logger = options.logger;
    this.#concurrency = options.concurrency ?? 32;
    this.#maxQueued = options.maxQueued ?? 100_000;
  }

  /** Markers queued or being deleted. */
  get pending(): number {
    return this.#queue.length + this.#running;
  }

  /** Queues a handled (acked) marker's deletion; waits only while the queue is full. */
  async add(seq: number, subject: string): Promise<void> {
    while (this.#queue.length >= this.#maxQueued) await this.#changed();
    this.#queue.push({ seq, subject });
    this.#pump();
  }

  /** Waits until nothing is queued or being deleted, at most `timeoutMs`; true if it got there. */
  async flush(timeoutMs: number): Promise<boolean> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.#notify();
    }, timeoutMs);
    try {
      while (this.pending > 0 && !timedOut) await this.#changed();
      return this.pending === 0;
    } finally {
      clearTimeout(timer);
    }
  }

  #pump(): void {
    while (this.#running < this.#concurrency) {
      const next = this.#queue.shift();
      if (next === undefined) return;
      this.#running++;
      void this.#delete(next.seq, next.subject).finally(() => {
        this.#running--;
        this.#notify();
        this.#pump();
      });
    }
  }

  async #delete(seq: number, subject: string): Promise<void> {
    try {
      await this.#jsm.streams.deleteMessage(this.#stream, seq, false);
    } catch (err) {
      // Deleted already (by another copy, a purge, or its own marker TTL): nothing left to do.
      if (isMessageGone(err)) return;
      this.#logger.warn({ subject, seq, err: (err as Error).message }, "marker_delete_failed");
    }
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
