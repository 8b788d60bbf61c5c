import {
  assertToken,
  bucketStream,
  MAX_SEQUENCES_PER_TENANT,
  type Sequence,
  SequenceRecord,
  type StoredSequence,
  sequenceKey,
} from "@followup/contracts";
import { isNoMessages, isWrongLastSequence } from "@followup/service-kit";
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import type { KV, KvEntry } from "@nats-io/kv";
import type { RevisionCondition } from "../http/request.js";

/**
 * A tenant's sequences in the `sequences` KV bucket under `<tenant>.<name>`. The tenant is part
 * of the key, so another tenant's sequence is never read, written or deleted. Writes that name a
 * revision (If-Match) are compare-and-set: of two editors who read the same revision, one wins
 * and the other is told, never overwritten silently.
 */

export class SequenceContractError extends Error {}

/** The sequences bucket: its KV handle, and the manager a listing reads its stream through. */
export interface SequenceBucket {
  kv: KV;
  jsm: JetStreamManager;
  /** The bucket's name (`sequences`). */
  bucket: string;
}

/** What the KV-Operation header of a deletion says (a put has none). */
const OPERATION_HEADER = "KV-Operation";

function parseRecord(key: string, json: unknown, revision: number): StoredSequence {
  const parsed = SequenceRecord.safeParse(json);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((issue) => issue.path.join(".") || "(root)"))];
    throw new SequenceContractError(`sequence ${key} breaks its contract at ${fields.join(", ")}`);
  }
  return { ...parsed.data, revision };
}

function decode(key: string, text: string, revision: number): StoredSequence {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SequenceContractError(`sequence ${key} is not JSON (${(err as Error).message})`);
  }
  return parseRecord(key, json, revision);
}

/** The current entry of a key, or null when it was never written or is deleted. */
async function currentEntry(kv: KV, key: string): Promise<KvEntry | null> {
  const entry = await kv.get(key);
  return entry === null || entry.operation !== "PUT" ? null : entry;
}

/** The tenant's sequence and the revision it was read at, or null. */
export async function getSequence(
  { kv }: SequenceBucket,
  tenant: string,
  name: string,
): Promise<StoredSequence | null> {
  const key = sequenceKey(tenant, name);
  const entry = await currentEntry(kv, key);
  return entry === null ? null : decode(key, entry.string(), entry.revision);
}

/**
 * Every sequence of the tenant, by name. One direct get of the last message of each key under
 * `<tenant>.*` (no consumer is made, so reading needs no more than the bucket's read permission);
 * a deleted key's last message is its deletion, left out.
 */
export async function listSequences(
  { jsm, bucket }: SequenceBucket,
  tenant: string,
): Promise<StoredSequence[]> {
  const filter = `$KV.${bucket}.${assertToken("tenant", tenant)}.*`;
  const messages: StoredMsg[] = [];
  try {
    const batch = await jsm.direct.getLastMessagesFor(bucketStream(bucket), { multi_last: [filter] });
    for await (const message of batch) messages.push(message);
  } catch (err) {
    // The server answers "no results" when the tenant has no key at all.
    if (!isNoMessages(err)) throw err;
  }
  const sequences: StoredSequence[] = [];
  for (const message of messages) {
    if (message.header.get(OPERATION_HEADER) !== "") continue;
    const key = message.subject.slice(`$KV.${bucket}.`.length);
    sequences.push(decode(key, message.string(), message.seq));
  }
  return sequences.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export type SequenceWrite =
  | { status: "created" | "replaced"; sequence: StoredSequence }
  /** A new sequence of a tenant that has MAX_SEQUENCES_PER_TENANT already. */
  | { status: "too_many"; limit: number }
  /** The If-Match named another revision than the current one (null: there is none). */
  | { status: "revision_mismatch"; current: number | null };

function matches(condition: RevisionCondition, revision: number): boolean {
  return condition === "any" || condition.includes(revision);
}

/**
 * Creates or replaces the tenant's sequence. Without a condition it is written whatever is
 * there; with one (If-Match) only over the current revision it names, as a compare-and-set, so
 * a write in between makes it a mismatch too. A new one is refused when the tenant has
 * MAX_SEQUENCES_PER_TENANT (two creates at once may both pass: the limit keeps far below the
 * 1024 keys a listing can read, so a few over it stay readable).
 */
export async function putSequence(
  store: SequenceBucket,
  tenant: string,
  name: string,
  sequence: Sequence,
  condition: RevisionCondition | null,
  now: Date,
): Promise<SequenceWrite> {
  const { kv } = store;
  const key = sequenceKey(tenant, name);
  const record: SequenceRecord = { ...sequence, tenant, name, updated_at: now.toISOString() };
  const bytes = new TextEncoder().encode(JSON.stringify(record));
  const stored = (revision: number): StoredSequence => ({ ...record, revision });
  if (condition === null) {
    if ((await currentEntry(kv, key)) === null) {
      const existing = await listSequences(store, tenant);
      if (existing.length >= MAX_SEQUENCES_PER_TENANT) {
        return { status: "too_many", limit: MAX_SEQUENCES_PER_TENANT };
      }
    }
    try {
      return { status: "created", sequence: stored(await kv.create(key, bytes)) };
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
    }
    return { status: "replaced", sequence: stored(await kv.put(key, bytes)) };
  }
  const current = await currentEntry(kv, key);
  if (current === null) return { status: "revision_mismatch", current: null };
  if (!matches(condition, current.revision))
    return { status: "revision_mismatch", current: current.revision };
  try {
    return { status: "replaced", sequence: stored(await kv.update(key, bytes, current.revision)) };
  } catch (err) {
    if (!isWrongLastSequence(err)) throw err;
    return { status: "revision_mismatch", current: (await currentEntry(kv, key))?.revision ?? null };
  }
}

export type SequenceDeletion =
  | { status: "deleted" | "absent" }
  | { status: "revision_mismatch"; current: number };

/**
 * Deletes the tenant's sequence (its history stays in the bucket until it ages out). With a
 * condition only the revision it names is deleted, compare-and-set like putSequence.
 */
export async function deleteSequence(
  { kv }: SequenceBucket,
  tenant: string,
  name: string,
  condition: RevisionCondition | null,
): Promise<SequenceDeletion> {
  const key = sequenceKey(tenant, name);
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
