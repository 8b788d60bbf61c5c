import {
  CHANNEL_SECRET_FIELDS,
  type ChannelSettingsRecord,
  type ChannelView,
  type KnownChannel,
  maskSecret,
  type SealedSecret,
} from "@followup/contracts";
import {
  openSettings,
  type SealingKeyring,
  sealSecret,
  secretContext,
  UnreadableSecretError,
} from "@followup/service-kit";
import type { Revisioned } from "../revisioned/index.js";

export { openSettings, UnreadableSecretError };

/**
 * Which fields of a channel's settings are sealed, and how: each secret field under its own IV,
 * bound to the tenant, the channel and the field (a sealed value moved to another record or
 * field does not open). What is not secret stays readable in the bucket.
 */

type Setting = string | number | boolean;

function isSecret(channel: KnownChannel, field: string): boolean {
  return (CHANNEL_SECRET_FIELDS[channel] as readonly string[]).includes(field);
}

/** The record's fields of validated settings: the readable ones as given, each secret sealed. */
export function sealSettings(
  keyring: SealingKeyring,
  tenant: string,
  channel: KnownChannel,
  given: Record<string, Setting | undefined>,
): Pick<ChannelSettingsRecord, "settings" | "secrets"> {
  const settings: Record<string, Setting> = {};
  const secrets: Record<string, SealedSecret> = {};
  for (const [field, value] of Object.entries(given)) {
    if (value === undefined) continue;
    if (isSecret(channel, field)) {
      secrets[field] = sealSecret(keyring, String(value), secretContext(tenant, channel, field));
    } else {
      settings[field] = value;
    }
  }
  return { settings, secrets };
}

/**
 * The record as the API shows it: its secrets opened (so a tampered one fails here, closed)
 * and masked to their last four characters.
 */
export function maskedView(keyring: SealingKeyring, stored: Revisioned<ChannelSettingsRecord>): ChannelView {
  const opened = openSettings(keyring, stored);
  const settings: Record<string, Setting> = { ...stored.settings };
  for (const field of Object.keys(stored.secrets))
    settings[field] = maskSecret(String(opened.settings[field]));
  return {
    name: stored.name,
    updated_at: stored.updated_at,
    settings,
    sealed_with_current_key: !opened.stale,
    revision: stored.revision,
    ...(stored.broken ? { broken: stored.broken } : {}),
  };
}
