import { bucketStream, SequenceRecord, type StoredSequence } from "@followup/contracts";
import { pause } from "@followup/service-kit";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";

/**
 * Every tenant's sequences, in memory, from a watch of the `sequences` bucket: enrolling a lead
 * reads no KV. The watch delivers each key's last value, then every change, each with its
 * revision (the bucket stream's sequence), so `applied` is how far the copy has read the bucket.
 *
 * A sequence written through the API applies to the next lead scored after the PUT returned, in
 * every scheduler copy: before a batch is planned, `upToDate()` reads the bucket stream's last
 * sequence (one STREAM.INFO round trip per batch, not per lead) and waits until the watch has
 * applied it. A PUT acknowledged before that read is at or below that sequence.
 */
export class SequenceCache {
  readonly #byTenant = new Map<string, Map<string, StoredSequence>>();
  /** Each tenant's sequences as a list, made again only after a change. */
  readonly #lists = new Map<string, StoredSequence[]>();
  #applied = 0;
  #waiters: { upTo: number; resolve: () => void }[] = [];
  #stop: (() => void) | undefined;

  private constructor(
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly logger: Logger,
  ) {}

  /** Starts the watch and resolves once the bucket as it is now has been read (before readiness). */
  static async start(
    kv: KV,
    bucket: string,
    jsm: JetStreamManager,
    logger: Logger,
    timeoutMs = 30_000,
  ): Promise<SequenceCache> {
    const cache = new SequenceCache(jsm, bucketStream(bucket), logger.child({ component: "sequences" }));
    const watch = await kv.watch({ key: ">" });
    cache.#stop = () => watch.stop();
    void (async () => {
      for await (const entry of watch)
        cache.#apply(entry.key, entry.operation, entry.revision, () => entry.json());
    })().catch((err: unknown) =>
      cache.logger.error({ err: (err as Error).message }, "sequences_watch_failed"),
    );
    await cache.upToDate(timeoutMs);
    cache.logger.info({ tenants: cache.#byTenant.size, revision: cache.#applied }, "sequences_loaded");
    return cache;
  }

  /** The tenant's sequences, enabled or not (an empty list: none, so the built-in one applies). */
  of(tenant: string): readonly StoredSequence[] {
    let list = this.#lists.get(tenant);
    if (list === undefined) {
      list = [...(this.#byTenant.get(tenant)?.values() ?? [])];
      this.#lists.set(tenant, list);
    }
    return list;
  }

  get(tenant: string, name: string): StoredSequence | null {
    return this.#byTenant.get(tenant)?.get(name) ?? null;
  }

  /**
   * Waits until the watch has applied every write stored in the bucket before this call. Throws
   * when that takes longer than `timeoutMs` (a broker failure to the caller, which retries),
   * rather than planning from sequences that may be stale.
   */
  async upToDate(timeoutMs = 5_000): Promise<void> {
    const last = (await this.jsm.streams.info(this.stream)).state.last_seq;
    if (this.#applied >= last) return;
    const reached = new Promise<void>((resolve) => this.#waiters.push({ upTo: last, resolve }));
    const timeout = new AbortController();
    const timedOut = pause(timeoutMs, timeout.signal).then((done) => done);
    const won = await Promise.race([reached.then(() => false), timedOut]);
    timeout.abort();
    if (won) {
      throw new Error(
        `the sequences watch did not reach revision ${last} in ${timeoutMs} ms (at ${this.#applied})`,
      );
    }
  }

  stop(): void {
    this.#stop?.();
  }

  #apply(key: string, operation: string, revision: number, json: () => unknown): void {
    const dot = key.indexOf(".");
    const tenant = key.slice(0, dot);
    const name = key.slice(dot + 1);
    let sequences = this.#byTenant.get(tenant);
    if (operation === "PUT") {
      const parsed = SequenceRecord.safeParse(safeJson(json));
      if (parsed.success) {
        if (sequences === undefined) {
          sequences = new Map();
          this.#byTenant.set(tenant, sequences);
        }
        sequences.set(name, { ...parsed.data, revision });
      } else {
        // lead-intake validates every write: a record that breaks its contract is a defect, and
        // enrolling by a part of it could send what nobody wrote. The tenant's others still apply.
        this.logger.error({ key, revision, issues: parsed.error.issues.length }, "sequence_invalid_ignored");
        sequences?.delete(name);
      }
    } else {
      sequences?.delete(name);
      if (sequences?.size === 0) this.#byTenant.delete(tenant);
    }
    this.#lists.delete(tenant);
    this.#applied = Math.max(this.#applied, revision);
    const waiting = this.#waiters;
    this.#waiters = waiting.filter((w) => w.upTo > this.#applied);
    for (const w of waiting) if (w.upTo <= this.#applied) w.resolve();
  }
}

function safeJson(json: () => unknown): unknown {
  try {
    return json();
  } catch {
    return undefined;
  }
}
