import { MAX_SEQUENCES_PER_TENANT, SequenceRecord, sequenceKey } from "@followup/contracts";
import type { BrokerHandles } from "../broker.js";
import { openStore, type RevisionedStore } from "../revisioned/index.js";

/** A tenant's sequences in the `sequences` KV bucket under `<tenant>.<name>`. */
export function sequenceStore(handles: BrokerHandles): RevisionedStore<SequenceRecord> {
  return openStore(handles, "sequences", {
    what: "sequence",
    schema: SequenceRecord,
    key: sequenceKey,
    maxPerTenant: MAX_SEQUENCES_PER_TENANT,
  });
}
