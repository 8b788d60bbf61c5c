import { CHANNEL_NAMES, ChannelSettingsRecord, channelSettingsKey } from "@followup/contracts";
import type { BrokerHandles } from "../broker.js";
import { openStore, type RevisionedStore } from "../revisioned/index.js";

/** A tenant's channel settings in the `channel_settings` KV bucket under `<tenant>.<channel>`. */
export function channelStore(handles: BrokerHandles): RevisionedStore<ChannelSettingsRecord> {
  return openStore(handles, "channels", {
    what: "channel",
    schema: ChannelSettingsRecord,
    key: channelSettingsKey,
    maxPerTenant: CHANNEL_NAMES.length,
  });
}
