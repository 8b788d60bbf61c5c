import { assertToken, bucketStream } from "@followup/contracts";
import { isNoMessages, isWrongLastSequence } from "@followup/service-kit";
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import type { KV, KvEntry } from "@nats-io/kv";
import type { z } from "zod";
import type { BrokerHandles } from "../broker.js";
import type { RevisionCondition } from "../http/request.js";

/**
 * A tenant's named records in one KV bucket under `<tenant>.<name>` (sequences, templates), each
 * read with its KV revision. The tenant is part of the key, so another tenant's record is never
 * read, written or deleted. Writes that name a revision (If-Match) are compare-and-set: of two
 * editors who read the same revision, one wins and the other is told, never overwritten silently.
 */

export class RecordContractError extends Error {}

/** The bucket: its KV handle, and the manager a listing reads its stream through. */
export interface RevisionedBucket {
  kv: KV;
  jsm: JetStreamManager;
  /** The bucket's name (`sequences`). */
  bucket: string;
}

/** What every record of such a bucket holds besides its own fields. */
export interface NamedRecord {
  tenant: string;
  name: string;
  updated_at: string;
}

/** What the records of one bucket are. */
export interface RecordKind<R extends NamedRecord> {
  /** What one is called in messages: `sequence`. */
  what: string;
  /** The stored record's schema (loose: a reader older than the writer still reads it). */
  schema: z.ZodType<R>;
  /** The key of a tenant's record (which checks the tenant and the name). */
  key(tenant: string, name: string): string;
  /** The most records a tenant may have (a listing reads at most 1024 keys). */
  maxPerTenant: number;
}

/** A record as read from the bucket, with the KV revision it was read at (for If-Match). */
export type Revisioned<R> = R & { revision: number };

export type RecordWrite<R> =
  | { status: "created" | "replaced"; record: Revisioned<R> }
  /** A new record of a tenant that has the most it may have already. */
  | { status: "too_many"; limit: number }
  /** The If-Match named another revision than the current one (null: there is none). */
  | { status: "revision_mismatch"; current: number | null };

export type RecordDeletion =
  | { status: "deleted" | "absent" }
  | { status: "revision_mismatch"; current: number };

/** What the KV-Operation header of a deletion says (a put has none). */
const OPERATION_HEADER = "KV-Operation";

/** The current entry of a key, or null when it was never written or is deleted. */
async function currentEntry(kv: KV, key: string): Promise<KvEntry | null> {
  const entry = await kv.get(key);
  return entry === null || entry.operation !== "PUT" ? null : entry;
}

function matches(condition: RevisionCondition, revision: number): boolean {
  return condition === "any" || condition.includes(revision);
}

export class RevisionedStore<R extends NamedRecord> {
  constructor(
    readonly bucket: RevisionedBucket,
    readonly kind: RecordKind<R>,
  ) {}

  #decode(key: string, text: string, revision: number): Revisioned<R> {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new RecordContractError(`${this.kind.what} ${key} is not JSON (${(err as Error).message})`);
    }
    const parsed = this.kind.schema.safeParse(json);
    if (!parsed.success) {
      const fields = [...new Set(parsed.error.issues.map((issue) => issue.path.join(".") || "(root)"))];
      throw new RecordContractError(`${this.kind.what} ${key} breaks its contract at ${fields.join(", ")}`);
    }
    return { ...parsed.data, revision };
  }

  /** The tenant's record and the revision it was read at, or null. */
  async get(tenant: string, name: string): Promise<Revisioned<R> | null> {
    const key = this.kind.key(tenant, name);
    const entry = await currentEntry(this.bucket.kv, key);
    return entry === null ? null : this.#decode(key, entry.string(), entry.revision);
  }

  /**
   * Every record of the tenant, by name. One direct get of the last message of each key under
   * `<tenant>.*` (no consumer is made, so reading needs no more than the bucket's read permission);
   * a deleted key's last message is its deletion, left out.
   */
  async list(tenant: string): Promise<Revisioned<R>[]> {
    const { jsm, bucket } = this.bucket;
    const filter = `$KV.${bucket}.${assertToken("tenant", tenant)}.*`;
    const messages: StoredMsg[] = [];
    try {
      const batch = await jsm.direct.getLastMessagesFor(bucketStream(bucket), { multi_last: [filter] });
      for await (const message of batch) messages.push(message);
    } catch (err) {
      // The server answers "no results" when the tenant has no key at all.
      if (!isNoMessages(err)) throw err;
    }
    const records: Revisioned<R>[] = [];
    for (const message of messages) {
      if (message.header.get(OPERATION_HEADER) !== "") continue;
      const key = message.subject.slice(`$KV.${bucket}.`.length);
      records.push(this.#decode(key, message.string(), message.seq));
    }
    return records.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Creates or replaces the tenant's record `name` with `fields`, stamped with `now`. Without a condition it is written whatever is there;
   * with one (If-Match) only over the current revision it names, as a compare-and-set, so a write
   * in between makes it a mismatch too. A new one is refused when the tenant has the most it may
   * have (two creates at once may both pass: the limit keeps far below the 1024 keys a listing
   * can read, so a few over it stay readable).
   */
  async put(
    tenant: string,
    name: string,
    fields: object,
    condition: RevisionCondition | null,
    now: Date,
  ): Promise<RecordWrite<R>> {
    const { kv } = this.bucket;
    const key = this.kind.key(tenant, name);
    // Parsed, not cast: what is written is a record its readers accept.
    const record = this.kind.schema.parse({ ...fields, tenant, name, updated_at: now.toISOString() });
    const bytes = new TextEncoder().encode(JSON.stringify(record));
    const stored = (revision: number): Revisioned<R> => ({ ...record, revision });
    if (condition === null) {
      if ((await currentEntry(kv, key)) === null) {
        const existing = await this.list(tenant);
        if (existing.length >= this.kind.maxPerTenant) {
          return { status: "too_many", limit: this.kind.maxPerTenant };
        }
      }
      try {
        return { status: "created", record: stored(await kv.create(key, bytes)) };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
      }
      return { status: "replaced", record: stored(await kv.put(key, bytes)) };
    }
    const current = await currentEntry(kv, key);
    if (current === null) return { status: "revision_mismatch", current: null };
    if (!matches(condition, current.revision))
      return { status: "revision_mismatch", current: current.revision };
    try {
      return { status: "replaced", record: stored(await kv.update(key, bytes, current.revision)) };
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
      return { status: "revision_mismatch", current: (await currentEntry(kv, key))?.revision ?? null };
    }
  }

  /**
   * Deletes the tenant's record (its history stays in the bucket until it ages out). With a
   * condition only the revision it names is deleted, compare-and-set like put.
   */
  async delete(tenant: string, name: string, condition: RevisionCondition | null): Promise<RecordDeletion> {
    const { kv } = this.bucket;
    const key = this.kind.key(tenant, name);
    const current = await currentEntry(kv, key);
    if (current === null) return { status: "absent" };
    if (condition === null) {
      await kv.delete(key);
      return { status: "deleted" };
    }
    if (!matches(condition, current.revision))
      return { status: "revision_mismatch", current: current.revision };
    try {
      await kv.delete(key, { previousSeq: current.revision });
      return { status: "deleted" };
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
      const now = await currentEntry(kv, key);
      return now === null ? { status: "absent" } : { status: "revision_mismatch", current: now.revision };
    }
  }
}

/** The buckets whose records are kept this way; each has a handle of the same name. */
export type RevisionedBucketName = "sequences" | "templates" | "channels";

/** The store of one such bucket, on the broker's handles. */
export function openStore<R extends NamedRecord>(
  handles: BrokerHandles,
  bucket: RevisionedBucketName,
  kind: RecordKind<R>,
): RevisionedStore<R> {
  const name = handles.topology.buckets[bucket].bucket;
  return new RevisionedStore({ kv: handles[bucket], jsm: handles.jsm, bucket: name }, kind);
}
