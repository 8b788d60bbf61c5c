import type { SlackSettings as ContractSlackSettings } from "@followup/contracts";
import { classifyStatus } from "../../classify.js";
import { parseRetryAfter } from "../../retry-after.js";
import {
  errorText,
  type OutboundMessage,
  type ProviderAnswer,
  refusal,
  refusedBeforeCall,
} from "../provider/answer.js";
import { HttpProviderClient, isHttpUrl } from "../provider/http.js";

export const SLACK = "slack";

/**
 * A tenant's Slack incoming webhook: contracts' SlackSettings, validated by lead-intake when
 * saved. The URL is the credential: it never appears in an answer.
 */
export type SlackSettings = ContractSlackSettings;

/** Statuses after which the webhook will never work again: revoked, channel deleted or archived. */
const GONE = new Set([403, 404, 410]);

/** Slack incoming webhooks over undici: one Agent (webhook URLs are the tenants'), `{text, blocks?}`. */
export class SlackWebhookClient extends HttpProviderClient<SlackSettings> {
  readonly provider = SLACK;

  async send(
    settings: SlackSettings,
    message: OutboundMessage,
    signal?: AbortSignal,
  ): Promise<ProviderAnswer> {
    if (!isHttpUrl(settings.webhook_url?.trim()))
      return refusedBeforeCall(
        SLACK,
        "invalid_settings",
        "settings.webhook_url: expected the webhook's https URL",
      );
    if (message.body.trim() === "") return refusedBeforeCall(SLACK, "invalid_message", "body: expected text");
    const url = settings.webhook_url.trim();
    const secrets = [url, new URL(url).pathname];
    const call = await this.post(
      url,
      { "content-type": "application/json" },
      JSON.stringify({ text: message.body, ...(message.blocks ? { blocks: message.blocks } : {}) }),
      secrets,
      signal,
    );
    if ("answer" in call) return call.answer;
    const { statusCode, headers, text } = call.response;
    const classification = classifyStatus(statusCode);
    if (classification.kind === "delivered") return { classification, statusCode };
    // Slack answers errors as one plain word: invalid_payload, channel_not_found, ...
    const word = errorText(text, secrets);
    const error = `${SLACK}: HTTP ${statusCode}${word ? `: ${word}` : ""}`;
    const gone = GONE.has(statusCode);
    return refusal(classification, statusCode, error, {
      providerCode: /^[a-z_]+$/.test(word) ? word : undefined,
      retryAfterMs: parseRetryAfter(headers["retry-after"], this.now()),
      permanentReason: gone ? "channel_gone" : statusCode === 400 ? "invalid_message" : "rejected",
      effect: gone ? "mark_channel_broken" : undefined,
    });
  }
}
