import {
  type ChannelSettingsRecord,
  type SuppressionChannel,
  type SuppressionReason,
  SuppressionRecord,
  suppressionId,
} from "@followup/contracts";
import type { KV } from "@nats-io/kv";
import { isWrongLastSequence } from "./jetstream-errors.js";
import { openSecret, type SealingKeyring, sealSecret } from "./sealing.js";

/**
 * The sealed parts of the channel records, for lead-intake (which writes them) and the
 * dispatcher (which sends with them) alike: what a channel secret and a suppressed address are
 * bound to, opening a channel's settings, and adding a suppression once.
 */

type Setting = string | number | boolean;

/** What a sealed channel secret is bound to: `channel-settings:<tenant>.<channel>.<field>`. */
export function secretContext(tenant: string, channel: string, field: string): string {
  return `channel-settings:${tenant}.${channel}.${field}`;
}

/** What a suppression's sealed address is bound to. */
export function suppressionAddressContext(tenant: string, id: string): string {
  return `suppression:${tenant}.${id}`;
}

/** Raised when a stored secret does not open: which field, and why (never the value). */
export class UnreadableSecretError extends Error {
  constructor(
    readonly channel: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`channel ${channel}: its sealed ${field} does not open: ${reason}`);
    this.name = "UnreadableSecretError";
  }
}

/** The settings of a stored record with every secret opened, and whether an old key sealed one. */
export function openSettings(
  keyring: SealingKeyring,
  record: ChannelSettingsRecord,
): { settings: Record<string, Setting>; stale: boolean } {
  const settings: Record<string, Setting> = { ...record.settings };
  let stale = false;
  for (const [field, sealed] of Object.entries(record.secrets)) {
    try {
      const opened = openSecret(keyring, sealed, secretContext(record.tenant, record.name, field));
      settings[field] = opened.value;
      stale ||= opened.stale;
    } catch (err) {
      throw new UnreadableSecretError(record.name, field, (err as Error).message);
    }
  }
  return { settings, stale };
}

export interface NewSuppression {
  channel: SuppressionChannel;
  address: string;
  reason: SuppressionReason;
  source: string;
}

async function readSuppression(kv: KV, key: string): Promise<SuppressionRecord | null> {
  const entry = await kv.get(key);
  if (entry === null || entry.operation !== "PUT") return null;
  return SuppressionRecord.parse(entry.json());
}

/**
 * Stores the suppression unless the address is suppressed already (then the stored one). The
 * address is sealed in the value when there is a keyring; without one it is stored without it:
 * a STOP is never dropped for want of a key to show the number with.
 */
export async function addSuppression(
  kv: KV,
  keyring: SealingKeyring | undefined,
  tenant: string,
  given: NewSuppression,
  now: Date,
): Promise<{ status: "created" | "exists"; record: SuppressionRecord }> {
  const id = suppressionId(given.channel, given.address);
  const key = `${tenant}.${id}`;
  for (;;) {
    const existing = await readSuppression(kv, key);
    if (existing !== null) return { status: "exists", record: existing };
    const record = SuppressionRecord.parse({
      tenant,
      id,
      channel: given.channel,
      ...(keyring
        ? { address: sealSecret(keyring, given.address, suppressionAddressContext(tenant, id)) }
        : {}),
      reason: given.reason,
      source: given.source,
      created_at: now.toISOString(),
    });
    try {
      await kv.create(key, JSON.stringify(record));
      return { status: "created", record };
    } catch (err) {
      // Another writer created it meanwhile, or it was deleted since: read again.
      if (!isWrongLastSequence(err)) throw err;
    }
  }
}
