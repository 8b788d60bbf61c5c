import type { SlackSettings } from "@followup/contracts";
import type { ChannelSpec } from "../message-channel.js";
import type { SlackWebhookClient } from "./webhook.js";

/**
 * Slack through the tenant's incoming webhook: a message to the tenant's own channel about the
 * lead (no person is reached, so no suppression list applies).
 */
export function slackChannel(options: { slack: SlackWebhookClient }): ChannelSpec<SlackSettings> {
  const { slack } = options;
  return {
    name: "slack",
    client: () => slack,
    clients: () => [slack],
    recipient: () => ({ address: "" }),
    links: () => ({}),
  };
}
