import {
  type KnownChannel,
  nextAllowedTime,
  type RenderedMessage,
  type SendWindow,
  type StoredLead,
  type SuppressionChannel,
  suppressionKey,
  TemplateRecord,
  templateKey,
} from "@followup/contracts";
import {
  builtInMessage,
  MessageRenderError,
  type MessageVariables,
  messageVariables,
  renderMessage,
} from "@followup/messages";
import { addSuppression, readLead, type SealingKeyring } from "@followup/service-kit";
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import type { DispatcherMetrics } from "../metrics.js";
import type { Channel, ChannelAnswer, ChannelFollowup } from "./channel.js";
import {
  type OutboundMessage,
  type PermanentReason,
  type ProviderAnswer,
  type ProviderClient,
  redact,
} from "./provider/answer.js";
import type { ChannelSettingsSource } from "./settings.js";

/**
 * A channel that sends a message the dispatcher writes (SMS, e-mail, Slack), as opposed to the
 * hook's payload. At delivery it reads the tenant's settings (cached), the lead (from KV: names,
 * numbers and addresses never travel on the broker), finds the recipient, checks the tenant's
 * suppression list, renders the step's template (or the channel's built-in message) and sends
 * through the settings' provider. What the provider's refusal means beyond the follow-up (Twilio
 * 21610: suppress the number; Slack 403/404/410: mark the channel broken) is done here, so the
 * answer the consumer settles is an ordinary classified one.
 */

export type MessageChannelName = Exclude<KnownChannel, "hook">;

/** Whom a message goes to: the address it is sent to and checked against the suppressions with. */
export interface Recipient {
  address: string;
  /** The suppression list it is checked against; none for Slack (a channel, not a person). */
  suppression?: SuppressionChannel;
  /** Hours it may be sent in (SMS), read in `zone` (the recipient's, when known). */
  hours?: { windows: SendWindow[]; zone?: string };
}

/** What differs between the channels: the provider, the recipient, the message's extra parts. */
export interface ChannelSpec<S> {
  readonly name: MessageChannelName;
  /** The client for these settings (e-mail: SendGrid or SMTP). */
  client(settings: S): ProviderClient<S>;
  /** The lead's recipient, or why there is none (permanent, no call). */
  recipient(lead: StoredLead, settings: S): Recipient | { refused: PermanentReason; why: string };
  /** Links the message carries (unsubscribe, status callback), or why they cannot be made. */
  links(
    followup: ChannelFollowup,
    lead: StoredLead,
    recipient: Recipient,
  ): Links | { refused: PermanentReason; why: string };
  /** Every client, for close and destroy. */
  clients(): ProviderClient<S>[];
}

export interface Links {
  unsubscribeUrl?: string;
  statusCallbackUrl?: string;
}

export interface MessageChannelDeps {
  leads: KV;
  templates: KV;
  suppressions: KV;
  settings: ChannelSettingsSource;
  /** Seals the address of a suppression this channel adds (a provider's opt-out). */
  keyring: SealingKeyring | undefined;
  metrics: Pick<DispatcherMetrics, "effects">;
  logger: Logger;
  concurrency: number;
  now?: () => Date;
}

export class MessageChannel<S> implements Channel {
  readonly name: string;
  readonly concurrency: number;
  readonly #now: () => Date;

  constructor(
    readonly spec: ChannelSpec<S>,
    readonly deps: MessageChannelDeps,
  ) {
    this.name = spec.name;
    this.concurrency = deps.concurrency;
    this.#now = deps.now ?? (() => new Date());
  }

  async send(followup: ChannelFollowup): Promise<ChannelAnswer> {
    const { tenant, due } = followup;
    const channel = this.spec.name;
    const lookup = await this.deps.settings.get(tenant, channel);
    if (!lookup.found) {
      const why =
        lookup.why === "not_configured"
          ? `channel ${channel} is not configured for tenant ${tenant} (PUT /v1/channels/${channel})`
          : lookup.why === "no_key"
            ? `channel ${channel}: CHANNEL_SECRETS_KEY is not set on the dispatcher, so its secrets cannot be opened`
            : `channel ${channel}: a stored secret does not open with CHANNEL_SECRETS_KEY or CHANNEL_SECRETS_KEYS_OLD`;
      return permanent("invalid_settings", why);
    }
    const settings = lookup.settings as S;
    const client = this.spec.client(settings);
    if (lookup.broken) {
      return permanent(
        "channel_gone",
        `channel ${channel} was marked broken at ${lookup.broken.at} (${lookup.broken.error ?? lookup.broken.reason}); PUT its settings again`,
        client.provider,
      );
    }

    const read = await readLead(this.deps.leads, { tenant, leadId: due.lead_id });
    if (read.status !== "found") {
      return permanent(
        "invalid_recipient",
        `lead ${due.lead_id}: ${read.status === "absent" ? "not stored" : "unreadable"}`,
        client.provider,
      );
    }
    const lead = read.lead;
    const recipient = this.spec.recipient(lead, settings);
    if ("refused" in recipient) return permanent(recipient.refused, recipient.why, client.provider);

    if (recipient.suppression) {
      const key = suppressionKey(tenant, recipient.suppression, recipient.address);
      const entry = await this.deps.suppressions.get(key);
      if (entry !== null && entry.operation === "PUT") {
        return {
          classification: { kind: "suppressed" },
          statusCode: null,
          provider: client.provider,
          reason: "suppressed",
          error: `the recipient is on the tenant's ${recipient.suppression} suppression list`,
        };
      }
    }

    if (recipient.hours) {
      // Held to the opening, not sent (a replay or a plan made without send hours can come at night).
      const now = this.#now();
      const allowed = nextAllowedTime(now, recipient.hours.windows, recipient.hours.zone);
      if (allowed.at !== null && allowed.at.getTime() > now.getTime()) {
        return {
          classification: { kind: "retry", reason: "quiet_hours" },
          statusCode: null,
          provider: client.provider,
          error: `outside the recipient's send hours in ${allowed.zone}: held until ${allowed.at.toISOString()}`,
          retryAfterMs: allowed.at.getTime() - now.getTime(),
          retryWindow: recipient.hours,
        };
      }
    }

    const links = this.spec.links(followup, lead, recipient);
    if ("refused" in links) return permanent(links.refused, links.why, client.provider);
    let rendered: RenderedMessage;
    try {
      rendered = await this.#render(followup, lead, links);
    } catch (err) {
      if (err instanceof TemplateMissingError || err instanceof MessageRenderError)
        return permanent("invalid_message", err.message, client.provider);
      throw err;
    }

    const message: OutboundMessage = {
      to: recipient.address,
      body: rendered.body,
      ...(rendered.subject !== undefined ? { subject: rendered.subject } : {}),
      ...(rendered.html !== undefined ? { html: rendered.html } : {}),
      ...links,
    };
    const started = performance.now();
    const answer = await client.send(settings, message, followup.signal);
    const providerDurationMs = performance.now() - started;
    if (answer.effect) await this.#applyEffect(followup, { ...answer, provider: client.provider }, recipient);
    return {
      ...withoutAddress(answer, recipient),
      provider: client.provider,
      providerDurationMs,
      ...(answer.providerMessageId ? { providerMessageId: answer.providerMessageId } : {}),
      ...(answer.permanentReason ? { reason: answer.permanentReason } : {}),
      ...(answer.classification.kind === "retry" && recipient.hours ? { retryWindow: recipient.hours } : {}),
    };
  }

  async #render(followup: ChannelFollowup, lead: StoredLead, links: Links): Promise<RenderedMessage> {
    const { tenant, due } = followup;
    const variables: MessageVariables = messageVariables(lead, {
      step: due.step,
      sequence: due.sequence ?? "default",
      ...(links.unsubscribeUrl ? { unsubscribeUrl: links.unsubscribeUrl } : {}),
    });
    if (due.template === undefined) return builtInMessage(this.spec.name, variables)!;
    const entry = await this.deps.templates.get(templateKey(tenant, due.template));
    if (entry === null || entry.operation !== "PUT")
      throw new TemplateMissingError(`template ${due.template}: not found for tenant ${tenant}`);
    const template = TemplateRecord.parse(entry.json());
    if (template.channel !== this.spec.name)
      throw new TemplateMissingError(
        `template ${due.template}: is for ${template.channel}, not ${this.spec.name}`,
      );
    return renderMessage(template, variables);
  }

  async #applyEffect(followup: ChannelFollowup, answer: ProviderAnswer, recipient: Recipient): Promise<void> {
    const { tenant, due } = followup;
    const log = this.deps.logger.child({
      tenant,
      lead_id: due.lead_id,
      step: due.step,
      channel: this.spec.name,
    });
    const effect = answer.effect!;
    try {
      if (effect === "suppress_recipient" && recipient.suppression) {
        const added = await addSuppression(
          this.deps.suppressions,
          this.deps.keyring,
          tenant,
          {
            channel: recipient.suppression,
            address: recipient.address,
            reason: "provider_opt_out",
            source: answer.provider!,
          },
          this.#now(),
        );
        log.info({ status: added.status, id: added.record.id }, "recipient_suppressed_by_provider");
      } else if (effect === "mark_channel_broken") {
        const marked = await this.deps.settings.markBroken(tenant, this.spec.name, {
          at: this.#now().toISOString(),
          reason: answer.permanentReason ?? "channel_gone",
          status_code: answer.statusCode,
          ...(answer.error ? { error: answer.error.slice(0, 500) } : {}),
        });
        log.warn({ marked, status_code: answer.statusCode }, "channel_marked_broken");
      }
      this.deps.metrics.effects.inc({ channel: this.spec.name, effect });
    } catch (err) {
      // The follow-up's own result stands; the effect is logged for an operator to repeat by hand.
      log.error({ effect, err: (err as Error).message }, "provider_effect_failed");
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.spec.clients().map((c) => c.close()));
  }

  async destroy(): Promise<void> {
    await Promise.allSettled(this.spec.clients().map((c) => c.destroy()));
  }
}

class TemplateMissingError extends Error {}

function permanent(reason: PermanentReason, why: string, provider?: string): ChannelAnswer {
  return {
    classification: { kind: "permanent" },
    statusCode: null,
    reason,
    error: why,
    ...(provider ? { provider } : {}),
  };
}

/** The answer with the recipient's address taken out of its error (results travel on the broker). */
function withoutAddress(answer: ProviderAnswer, recipient: Recipient): ProviderAnswer {
  if (answer.error === undefined) return answer;
  return { ...answer, error: redact(answer.error, [recipient.address]) };
}
