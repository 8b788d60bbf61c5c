import { z } from "zod";
import { Token } from "./lead.js";
import { RecordRevision } from "./named-records.js";
import { KNOWN_CHANNELS, KnownChannel } from "./sequences.js";
import { assertToken } from "./subjects.js";

/**
 * A tenant's channel settings: which provider sends its SMS and e-mail, its Slack webhook, its
 * own hook URL and secret, in the `channel_settings` KV bucket under `<tenant>.<channel>`.
 * lead-intake stores them (`/v1/channels`), the dispatcher reads them at delivery. The secret
 * fields (CHANNEL_SECRET_FIELDS) are stored sealed (AES-256-GCM, service-kit's sealing.ts), the
 * rest readable; the API never shows a secret, only its masked form.
 */

/** One plain e-mail address (no display name, no spaces or header-breaking characters). */
const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:".]+(\.[^\s@<>()[\]\\,;:".]+)+$/;
/** E.164: `+`, a country code and at most 15 digits in all. */
export const E164_PATTERN = /^\+[1-9][0-9]{6,14}$/;

export const EmailAddress = z
  .string("must be an e-mail address like name@example.com")
  .trim()
  .max(254, "must be at most 254 characters")
  .regex(ADDRESS, "must be an e-mail address like name@example.com");

export const E164Phone = z
  .string("must be a phone number in E.164, like +14155552671")
  .regex(E164_PATTERN, "must be a phone number in E.164, like +14155552671");

function sid(prefix: string) {
  const rule = `must be ${prefix} followed by 32 hex digits`;
  return z.string(rule).regex(new RegExp(`^${prefix}[0-9a-fA-F]{32}$`), rule);
}

function secret(what: string) {
  return z
    .string(`must be the ${what} as text`)
    .min(1, `must be the ${what}`)
    .max(1024, "must be at most 1024 characters");
}

/** An https URL with a host and no credentials in it. */
function httpsUrl(what: string) {
  const rule = `must be the ${what}'s https URL`;
  return z
    .string(rule)
    .trim()
    .max(2048, "must be at most 2048 characters")
    .refine((text) => {
      try {
        const url = new URL(text);
        return url.protocol === "https:" && url.hostname !== "" && url.username === "" && url.password === "";
      } catch {
        return false;
      }
    }, rule);
}

/** A Standard Webhooks secret: `whsec_` and base64 of at least 24 bytes (webhooks.ts parses it). */
export const WebhookSecretText = z.string("must be whsec_ followed by base64").refine((text) => {
  const encoded = text.startsWith("whsec_") ? text.slice("whsec_".length) : "";
  return /^[A-Za-z0-9+/]+={0,2}$/.test(encoded) && Buffer.from(encoded, "base64").length >= 24;
}, "must be whsec_ followed by base64 of at least 24 bytes (e.g. from `openssl rand -base64 32`)");

/** `sms`: Twilio, with its auth token or an API key, and one sender. */
export const SmsSettings = z
  .strictObject({
    provider: z.literal("twilio", 'must be "twilio"'),
    account_sid: sid("AC"),
    auth_token: secret("auth token").optional(),
    api_key_sid: sid("SK").optional(),
    api_key_secret: secret("API key secret").optional(),
    from: E164Phone.optional(),
    messaging_service_sid: sid("MG").optional(),
    /** Where numbers written without `+` were written (ISO 3166-1 alpha-2); none: only +numbers. */
    default_region: z
      .string()
      .regex(/^[A-Z]{2}$/, "must be an ISO 3166-1 alpha-2 region such as US")
      .optional(),
  })
  .superRefine((s, ctx) => {
    const apiKey = s.api_key_sid !== undefined || s.api_key_secret !== undefined;
    if ((s.auth_token !== undefined) === apiKey) {
      ctx.addIssue({
        code: "custom",
        path: ["auth_token"],
        message: "give auth_token, or api_key_sid with api_key_secret (not both)",
      });
    } else if (apiKey && (s.api_key_sid === undefined || s.api_key_secret === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: [s.api_key_sid === undefined ? "api_key_sid" : "api_key_secret"],
        message: "api_key_sid and api_key_secret go together",
      });
    }
    if ((s.from !== undefined) === (s.messaging_service_sid !== undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["from"],
        message: "give exactly one of from and messaging_service_sid",
      });
    }
  })
  .meta({ id: "SmsSettings", description: "Body of PUT /v1/channels/sms" });
export type SmsSettings = z.infer<typeof SmsSettings>;

const emailCommon = {
  from: EmailAddress,
  from_name: z.string().trim().min(1).max(200, "must be at most 200 characters").optional(),
  reply_to: EmailAddress.optional(),
};

export const SendGridSettings = z.strictObject({
  provider: z.literal("sendgrid"),
  api_key: secret("API key"),
  ...emailCommon,
});
export type SendGridSettings = z.infer<typeof SendGridSettings>;

export const SmtpSettings = z
  .strictObject({
    provider: z.literal("smtp"),
    host: z.string("must be the relay's host name").trim().min(1, "must be the relay's host name").max(253),
    port: z.number("must be a port number").int("must be an integer").min(1).max(65_535),
    /** TLS from the first byte (port 465); false: plain, upgraded by STARTTLS when offered. */
    secure: z.boolean("must be true or false"),
    /** Refuse to go on without STARTTLS (so credentials never travel in the clear). */
    require_tls: z.boolean("must be true or false").optional(),
    user: z.string().min(1).max(256).optional(),
    pass: secret("password").optional(),
    ...emailCommon,
  })
  .superRefine((s, ctx) => {
    if ((s.user === undefined) !== (s.pass === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: [s.user === undefined ? "user" : "pass"],
        message: "user and pass go together, or neither",
      });
    }
  });
export type SmtpSettings = z.infer<typeof SmtpSettings>;

/** `email`: SendGrid or an SMTP relay. */
export const EmailSettings = z
  .discriminatedUnion("provider", [SendGridSettings, SmtpSettings], {
    error: 'provider must be "sendgrid" or "smtp"',
  })
  .meta({ id: "EmailSettings", description: "Body of PUT /v1/channels/email" });
export type EmailSettings = z.infer<typeof EmailSettings>;

/** `slack`: an incoming webhook; its URL is the credential. */
export const SlackSettings = z
  .strictObject({ webhook_url: httpsUrl("incoming webhook") })
  .meta({ id: "SlackSettings", description: "Body of PUT /v1/channels/slack" });
export type SlackSettings = z.infer<typeof SlackSettings>;

/** `hook`: the tenant's own receiver instead of the deployment's default, and its signing secret. */
export const HookSettings = z
  .strictObject({ url: httpsUrl("receiver"), secret: WebhookSecretText })
  .meta({ id: "HookSettings", description: "Body of PUT /v1/channels/hook" });
export type HookSettings = z.infer<typeof HookSettings>;

/** Each channel's settings, as PUT takes them and the dispatcher uses them once opened. */
export const CHANNEL_SETTINGS = {
  sms: SmsSettings,
  email: EmailSettings,
  slack: SlackSettings,
  hook: HookSettings,
} as const satisfies Record<KnownChannel, z.ZodType>;
export type ChannelSettingsOf<C extends KnownChannel> = z.infer<(typeof CHANNEL_SETTINGS)[C]>;

/** The fields of each channel that are sealed at rest and masked in every answer. */
export const CHANNEL_SECRET_FIELDS = {
  sms: ["auth_token", "api_key_secret"],
  email: ["api_key", "pass"],
  slack: ["webhook_url"],
  hook: ["secret"],
} as const satisfies Record<KnownChannel, readonly string[]>;

export const CHANNEL_NAMES = KNOWN_CHANNELS;
export const ChannelName = KnownChannel;

/** A value sealed by service-kit's sealSecret: AES-256-GCM, the key named by its id. */
export const SealedSecret = z
  .strictObject({
    v: z.literal(1),
    alg: z.literal("A256GCM"),
    /** The id (a fingerprint) of the key it was sealed with. */
    kid: z.string().regex(/^[0-9a-f]{16}$/),
    iv: z.string().regex(/^[A-Za-z0-9_-]+$/),
    data: z.string().regex(/^[A-Za-z0-9_-]*$/),
    tag: z.string().regex(/^[A-Za-z0-9_-]+$/),
  })
  .meta({ id: "SealedSecret", description: "A secret sealed with AES-256-GCM" });
export type SealedSecret = z.infer<typeof SealedSecret>;

/** A readable setting: what is left of a channel's settings once its secrets are taken out. */
const SettingValue = z.union([z.string(), z.number(), z.boolean()]);

/**
 * A channel the provider says will never work again (a Slack webhook revoked, its channel deleted
 * or archived: 403, 404, 410), marked by the dispatcher; a PUT of new settings clears it.
 */
export const ChannelBroken = z
  .object({
    at: z.iso.datetime(),
    /** The permanent reason (channel_gone) and what the provider said. */
    reason: z.string().min(1).max(64),
    status_code: z.number().int().nullable(),
    error: z.string().max(500).optional(),
  })
  .meta({ id: "ChannelBroken", description: "A channel the provider refused for good" });
export type ChannelBroken = z.infer<typeof ChannelBroken>;

/** A channel's settings as stored under `<tenant>.<channel>`: secrets sealed, the rest as given. */
export const ChannelSettingsRecord = z
  .looseObject({
    tenant: Token,
    name: ChannelName,
    updated_at: z.iso.datetime(),
    settings: z.record(z.string(), SettingValue),
    secrets: z.record(z.string(), SealedSecret),
    broken: ChannelBroken.optional(),
  })
  .meta({ id: "ChannelSettingsRecord", description: "Value of a channel in the channel_settings KV bucket" });
export type ChannelSettingsRecord = z.infer<typeof ChannelSettingsRecord>;

/** The key of a tenant's channel in the `channel_settings` bucket. */
export function channelSettingsKey(tenant: string, channel: string): string {
  return `${assertToken("tenant", tenant)}.${ChannelName.parse(channel)}`;
}

/** Secrets shorter than this are masked whole: four characters of them would say too much. */
export const MASK_MIN_LENGTH = 12;

/** `****` and the last four characters (all masked for a short secret): what an answer shows. */
export function maskSecret(value: string): string {
  return value.length >= MASK_MIN_LENGTH ? `****${value.slice(-4)}` : "****";
}

/** `/v1/channels/:channel`. */
export const ChannelParams = z
  .object({ channel: ChannelName })
  .meta({ id: "ChannelParams", description: "Path parameters of /v1/channels/:channel" });
export type ChannelParams = z.infer<typeof ChannelParams>;

/** A channel's settings as the API shows them: each secret masked. */
export const ChannelView = z
  .object({
    name: ChannelName,
    updated_at: z.iso.datetime(),
    // Loose rather than a record of a union: the fields are the channel's (SmsSettings, ...).
    settings: z
      .looseObject({})
      .describe('The channel\'s settings as stored, each secret masked ("****1234")'),
    sealed_with_current_key: z
      .boolean()
      .describe(
        "false: its secrets are sealed with an old key; PUT it again to seal them with the current one",
      ),
    revision: RecordRevision,
    broken: ChannelBroken.optional().describe(
      "Present when the provider refused the channel for good (a Slack webhook revoked or its channel gone): " +
        "follow-ups on it fail until the settings are PUT again",
    ),
  })
  .meta({ id: "ChannelView", description: "data of the responses to GET and PUT /v1/channels/:channel" });
export type ChannelView = z.infer<typeof ChannelView>;

export const ChannelList = z
  .object({ count: z.number().int().min(0), channels: z.array(ChannelView) })
  .meta({ id: "ChannelList", description: "data of the response to GET /v1/channels" });
export type ChannelList = z.infer<typeof ChannelList>;

export const ChannelDeleted = z
  .object({ name: ChannelName, deleted: z.literal(true) })
  .meta({ id: "ChannelDeleted", description: "data of the response to DELETE /v1/channels/:channel" });
export type ChannelDeleted = z.infer<typeof ChannelDeleted>;
