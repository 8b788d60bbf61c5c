import { bucketStream, SuppressionRecord, type SuppressionView } from "@followup/contracts";
import {
  addSuppression,
  isNoMessages,
  type NewSuppression,
  openSecret,
  type SealingKeyring,
  suppressionAddressContext,
} from "@followup/service-kit";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { BrokerHandles } from "../broker.js";

/**
 * A tenant's suppressions in the `suppressions` bucket under `<tenant>.<id>`, the id the hash of
 * channel and normalised address (contracts' suppressionKey, which the dispatcher looks up). The
 * address is sealed in the value with the channel secrets' key, bound to the key; without a key
 * the suppression is stored all the same, without its address: a STOP is never dropped for want
 * of a key to show the number with.
 */

const OPERATION_HEADER = "KV-Operation";
/** Messages a listing reads per direct batch get. */
const LIST_PAGE = 500;

export class SuppressionStore {
  constructor(
    readonly kv: KV,
    readonly jsm: JetStreamManager,
    readonly bucket: string,
    readonly keyring: SealingKeyring | undefined,
  ) {}

  async get(tenant: string, id: string): Promise<SuppressionRecord | null> {
    const entry = await this.kv.get(`${tenant}.${id}`);
    if (entry === null || entry.operation !== "PUT") return null;
    return SuppressionRecord.parse(entry.json());
  }

  /** Stores the suppression unless the address is suppressed already (then the stored one). */
  add(
    tenant: string,
    given: NewSuppression,
    now: Date,
  ): Promise<{ status: "created" | "exists"; record: SuppressionRecord }> {
    return addSuppression(this.kv, this.keyring, tenant, given, now);
  }

  /** Removes the suppression; false when there was none. */
  async remove(tenant: string, id: string): Promise<boolean> {
    if ((await this.get(tenant, id)) === null) return false;
    await this.kv.delete(`${tenant}.${id}`);
    return true;
  }

  /**
   * The tenant's suppressions in the order they were added, at most `limit`. Read page by page
   * through the bucket's stream by subject (a direct get of the last value of every key cannot
   * serve more than 1024 keys, and a tenant may well have more suppressions than that); with
   * history 1 each key holds one message, its value or its deletion (skipped).
   */
  async list(tenant: string, limit: number): Promise<{ records: SuppressionRecord[]; more: boolean }> {
    const records: SuppressionRecord[] = [];
    const subject = `$KV.${this.bucket}.${tenant}.*`;
    let seq = 1;
    for (;;) {
      let page = 0;
      try {
        const batch = await this.jsm.direct.getBatch(bucketStream(this.bucket), {
          seq,
          next_by_subj: subject,
          batch: LIST_PAGE,
        });
        for await (const message of batch) {
          page += 1;
          seq = message.seq + 1;
          if (message.header.get(OPERATION_HEADER) !== "") continue;
          if (records.length === limit) return { records, more: true };
          records.push(SuppressionRecord.parse(message.json()));
        }
      } catch (err) {
        if (!isNoMessages(err)) throw err;
      }
      if (page < LIST_PAGE) return { records, more: false };
    }
  }

  /** The record as its tenant sees it: the address opened, or null when it cannot be. */
  view(record: SuppressionRecord): SuppressionView {
    let address: string | null = null;
    if (record.address && this.keyring) {
      try {
        address = openSecret(
          this.keyring,
          record.address,
          suppressionAddressContext(record.tenant, record.id),
        ).value;
      } catch {
        address = null;
      }
    }
    return {
      id: record.id,
      channel: record.channel,
      address,
      reason: record.reason,
      source: record.source,
      created_at: record.created_at,
    };
  }
}

export function suppressionStore(
  handles: BrokerHandles,
  keyring: SealingKeyring | undefined,
): SuppressionStore {
  return new SuppressionStore(
    handles.suppressions,
    handles.jsm,
    handles.topology.buckets.suppressions.bucket,
    keyring,
  );
}
