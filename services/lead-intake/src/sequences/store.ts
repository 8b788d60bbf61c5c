import {
  MAX_SEQUENCES_PER_TENANT,
  type Sequence,
  SequenceRecord,
  type StoredSequence,
  sequenceKey,
} from "@followup/contracts";
import type { BrokerHandles } from "../broker.js";
import type { RevisionCondition } from "../http/request.js";
import { type RecordKind, type RecordWrite, RevisionedStore } from "../revisioned/index.js";

/** A tenant's sequences in the `sequences` KV bucket under `<tenant>.<name>`. */
const SEQUENCES: RecordKind<SequenceRecord> = {
  what: "sequence",
  schema: SequenceRecord,
  key: sequenceKey,
  maxPerTenant: MAX_SEQUENCES_PER_TENANT,
};

export type SequenceStore = RevisionedStore<SequenceRecord>;

export function sequenceStore(handles: BrokerHandles): SequenceStore {
  const bucket = handles.topology.buckets.sequences.bucket;
  return new RevisionedStore({ kv: handles.sequences, jsm: handles.jsm, bucket }, SEQUENCES);
}

/** Creates or replaces the tenant's sequence (see RevisionedStore.put), stamped with `now`. */
export function putSequence(
  store: SequenceStore,
  tenant: string,
  name: string,
  sequence: Sequence,
  condition: RevisionCondition | null,
  now: Date,
): Promise<RecordWrite<SequenceRecord>> {
  return store.put(tenant, { ...sequence, tenant, name, updated_at: now.toISOString() }, condition);
}

export type { StoredSequence };
