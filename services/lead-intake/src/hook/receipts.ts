import { createHash } from "node:crypto";
import type { HookReceipt } from "@followup/contracts";
import { isWrongLastSequence } from "@followup/service-kit";
import type { KV } from "@nats-io/kv";

/**
 * Receipts of the default hook in the `hook_receipts` bucket: one per webhook-id, written with
 * a KV create, so a replay finds the key and is acknowledged without a second record.
 */

/** `<tenant>.<leadId>.<first 32 hex of sha256(webhook-id)>`: any webhook-id becomes a valid key token. */
export function receiptKey(tenant: string, leadId: string, webhookId: string): string {
  const hash = createHash("sha256").update(webhookId, "utf8").digest("hex").slice(0, 32);
  return `${tenant}.${leadId}.${hash}`;
}

/** Records the receipt under `key`; true when it was there already (a replay). */
export async function recordReceipt(receipts: KV, key: string, receipt: HookReceipt): Promise<boolean> {
  try {
    await receipts.create(key, new TextEncoder().encode(JSON.stringify(receipt)));
    return false;
  } catch (err) {
    if (isWrongLastSequence(err)) return true;
    throw err;
  }
}
