import { bucketKeySubject, bucketStream } from "@followup/contracts";
import {
  isAtomicBatchRejected,
  isNoMessages,
  type Logger,
  pause,
  publishAtomic,
  publishHeaders,
  readStream,
} from "@followup/service-kit";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import {
  addToDoc,
  applyEvent,
  type CounterDoc,
  contributionDelta,
  emptyRecord,
  type LeadRecord,
  leadRecordKey,
  type ProjectionEvent,
} from "./projection.js";

/**
 * The projection in the `reports` bucket: `lead.<tenant>.<leadId>` (each lead's record) and the
 * counters documents (`seq.<tenant>.<sequence>.<day>`, `steps.<tenant>.<day>`). A batch of events
 * is written as one atomic batch of compare-and-set puts: every lead record it changes and every
 * document those changes touch, each expecting the revision it was read at. So a record and
 * the counts it makes are stored together or not at all, a crash between them cannot count a
 * lead twice or lose it, and two copies writing the same document make one of them read again.
 */

export const REPORTS_BUCKET = "reports";
const CAS_ATTEMPTS = 20;

export interface ProjectionStoreDeps {
  kv: KV;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** The attribution window: a booking within it of the lead's creation is a conversion. */
  windowMs: number;
  logger?: Logger;
  timeoutMs?: number;
}

interface Read<T> {
  value: T | null;
  revision: number;
}

export class ProjectionStore {
  readonly #deps: ProjectionStoreDeps;

  constructor(deps: ProjectionStoreDeps) {
    this.#deps = deps;
  }

  async #read<T>(key: string): Promise<Read<T>> {
    const entry = await this.#deps.kv.get(key);
    if (entry === null) return { value: null, revision: 0 };
    // A deleted key's revision is its delete marker: the next put expects that one.
    if (entry.operation !== "PUT") return { value: null, revision: entry.revision };
    return { value: entry.json<T>(), revision: entry.revision };
  }

  /**
   * Applies the events (up to a few hundred: every lead and document they touch goes into one
   * atomic batch of at most 1000) and returns how many lead records changed. A concurrent
   * writer's change makes the batch fail as a whole; it is then read and computed again.
   */
  async apply(events: readonly ProjectionEvent[]): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#applyOnce(events);
      } catch (err) {
        if (!isAtomicBatchRejected(err) || attempt >= CAS_ATTEMPTS) throw err;
        this.#deps.logger?.debug({ attempt, err }, "reports_batch_conflict_retrying");
        await pause(Math.min(200, 5 * attempt) * (0.5 + Math.random() / 2));
      }
    }
  }

  async #applyOnce(events: readonly ProjectionEvent[]): Promise<number> {
    const byLead = new Map<string, ProjectionEvent[]>();
    for (const event of events) {
      const key = leadRecordKey(event.tenant, event.lead_id);
      byLead.set(key, [...(byLead.get(key) ?? []), event]);
    }
    const reads = await Promise.all(
      [...byLead.keys()].map(async (key) => [key, await this.#read<LeadRecord>(key)] as const),
    );
    const delta = new Map<string, Map<string, number>>();
    const changed: { key: string; record: LeadRecord; revision: number }[] = [];
    for (const [key, read] of reads) {
      const leadEvents = byLead.get(key)!;
      const first = leadEvents[0]!;
      const before = read.value ?? emptyRecord(first.tenant, first.lead_id);
      const after = leadEvents.reduce(applyEvent, before);
      if (after === before) continue;
      contributionDelta(read.value, after, this.#deps.windowMs, delta);
      changed.push({ key, record: after, revision: read.revision });
    }
    if (changed.length === 0) return 0;
    const docs = await Promise.all(
      [...delta.entries()].map(async ([key, fields]) => ({
        key,
        fields,
        read: await this.#read<CounterDoc>(key),
      })),
    );
    const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
    const messages = [
      ...changed.map(({ key, record, revision }) => ({
        subject: bucketKeySubject(REPORTS_BUCKET, key),
        data: encode(record),
        headers: publishHeaders({ expectLastSubjectSequence: revision }),
      })),
      ...docs.map(({ key, fields, read }) => ({
        subject: bucketKeySubject(REPORTS_BUCKET, key),
        data: encode(addToDoc(read.value ?? {}, fields)),
        headers: publishHeaders({ expectLastSubjectSequence: read.revision }),
      })),
    ];
    await publishAtomic(this.#deps.js, messages, {
      ...(this.#deps.timeoutMs !== undefined ? { timeoutMs: this.#deps.timeoutMs } : {}),
    });
    return changed.length;
  }

  /**
   * The counters documents under `<kind>.<tenant>.<...>.*` by their last key token (the day),
   * in one direct get of each key's last value: at most 1024 days (nearly three years) a query.
   */
  async documents(prefix: string): Promise<Map<string, CounterDoc>> {
    const docs = new Map<string, CounterDoc>();
    try {
      const batch = await this.#deps.jsm.direct.getLastMessagesFor(bucketStream(REPORTS_BUCKET), {
        multi_last: [bucketKeySubject(REPORTS_BUCKET, `${prefix}.*`)],
      });
      for await (const message of batch) {
        if (message.header?.get("KV-Operation")) continue;
        const day = message.subject.slice(message.subject.lastIndexOf(".") + 1);
        docs.set(day, message.json<CounterDoc>());
      }
    } catch (err) {
      if (!isNoMessages(err)) throw err;
    }
    return docs;
  }

  /** Every key of the bucket and its value (deleted keys left out): for the rebuild's comparison. */
  async snapshot(): Promise<Map<string, unknown>> {
    const values = new Map<string, unknown>();
    const prefix = bucketKeySubject(REPORTS_BUCKET, "");
    for await (const message of readStream(this.#deps.jsm, bucketStream(REPORTS_BUCKET), `${prefix}>`)) {
      const key = message.subject.slice(prefix.length);
      const operation = message.header?.get("KV-Operation");
      if (operation) values.delete(key);
      else values.set(key, message.json());
    }
    return values;
  }
}
