import type { Topology } from "@followup/contracts";
import type { SealingKeyring } from "@followup/service-kit";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { DispatcherMetrics } from "../metrics.js";
import { ChannelRegistry } from "./channel.js";
import { emailChannel } from "./email/channel.js";
import { SendGridClient } from "./email/sendgrid.js";
import { SmtpClient } from "./email/smtp.js";
import { HookChannel } from "./hook.js";
import { MessageChannel } from "./message-channel.js";
import { ChannelSettingsCache } from "./settings.js";
import { slackChannel } from "./slack/channel.js";
import { SlackWebhookClient } from "./slack/webhook.js";
import { smsChannel } from "./sms/channel.js";
import { TwilioClient } from "./sms/twilio.js";

export { ChannelRegistry } from "./channel.js";
export { HookChannel } from "./hook.js";
export { ChannelSettingsCache } from "./settings.js";

export interface ChannelOptions {
  nc: NatsConnection;
  topology: Topology;
  metrics: DispatcherMetrics;
  logger: Logger;
  hook: { url: string; secret: Buffer; timeoutMs: number; concurrency: number };
  /** Calls in flight per provider channel (sms, email, slack). */
  providerConcurrency: number;
  providerTimeoutMs: number;
  twilioApiUrl: string;
  sendgridApiUrl: string;
  keyring: SealingKeyring | undefined;
  publicBaseUrl?: string | undefined;
  unsubscribeSecret?: readonly string[] | undefined;
}

/**
 * Every channel behind one registry: the HTTP hook (the deployment's, or a tenant's own), SMS
 * (Twilio), e-mail (SendGrid or SMTP) and Slack, sharing one cache of the tenants' channel
 * settings, kept current by a watch. `stop()` ends the watch.
 */
export async function createChannels(
  options: ChannelOptions,
): Promise<{ registry: ChannelRegistry; stop(): void }> {
  const { nc, topology, logger } = options;
  const kvm = new Kvm(nc);
  const { buckets } = topology;
  const [leads, templates, suppressions, channelSettings] = await Promise.all([
    kvm.open(buckets.leads.bucket),
    kvm.open(buckets.templates.bucket),
    kvm.open(buckets.suppressions.bucket),
    kvm.open(buckets.channels.bucket),
  ]);
  const settings = new ChannelSettingsCache(channelSettings, {
    jsm: await jetstreamManager(nc),
    bucket: buckets.channels.bucket,
    keyring: options.keyring,
    log: logger,
  });
  await settings.start();

  const http = { timeoutMs: options.providerTimeoutMs, connections: options.providerConcurrency };
  const deps = {
    leads,
    templates,
    suppressions,
    settings,
    keyring: options.keyring,
    metrics: options.metrics,
    logger,
    concurrency: options.providerConcurrency,
  };
  const { publicBaseUrl } = options;
  const registry = new ChannelRegistry()
    .register(new HookChannel({ ...options.hook, settings }))
    .register(
      new MessageChannel(
        smsChannel({ twilio: new TwilioClient({ ...http, apiUrl: options.twilioApiUrl }), publicBaseUrl }),
        deps,
      ),
    )
    .register(
      new MessageChannel(
        emailChannel({
          sendgrid: new SendGridClient({ ...http, apiUrl: options.sendgridApiUrl }),
          smtp: new SmtpClient({ timeoutMs: options.providerTimeoutMs }),
          publicBaseUrl,
          unsubscribeSecret: options.unsubscribeSecret,
        }),
        deps,
      ),
    )
    .register(new MessageChannel(slackChannel({ slack: new SlackWebhookClient(http) }), deps));
  return { registry, stop: () => settings.stop() };
}
