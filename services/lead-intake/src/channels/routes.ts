import {
  CHANNEL_NAMES,
  CHANNEL_SECRET_FIELDS,
  CHANNEL_SETTINGS,
  ChannelDeleted,
  ChannelList,
  ChannelParams,
  type ChannelSettingsRecord,
  ChannelView,
  ConditionalHeaders,
  type KnownChannel,
  MASK_MIN_LENGTH,
  okEnvelope,
} from "@followup/contracts";
import type { SealingKeyring } from "@followup/service-kit";
import type { FastifyBaseLogger } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { AppDeps } from "../deps.js";
import { HttpError, notFound, onBroker } from "../errors.js";
import { revisionCondition, tenantOf } from "../http/request.js";
import { errorResponses, jsonResponse } from "../http/responses.js";
import { answerDeletion, answerWrite, type Revisioned, withEtag } from "../revisioned/index.js";
import { maskedView, sealSettings, UnreadableSecretError } from "./sealed.js";
import { channelStore } from "./store.js";

const TAG = "channels";
const WHAT = { one: "channel", many: "channels" };

/** A channel is one of a fixed set: another name is 400 naming `channel` and the set. */
const config = { invalidParams: "validation_error" } as const;

const MASKING =
  `Secrets (${CHANNEL_NAMES.map((c) => `${c}: ${CHANNEL_SECRET_FIELDS[c].join(", ")}`).join("; ")}) are stored ` +
  `sealed and never shown: an answer has "****" and their last four characters (only "****" for one shorter ` +
  `than ${MASK_MIN_LENGTH}).`;

const NOT_CONFIGURED =
  "not_configured: CHANNEL_SECRETS_KEY is not set on lead-intake, so secrets can be neither sealed nor opened";

const UNREADABLE =
  "internal_error: a stored secret does not open (changed in the bucket, or sealed with a key no longer configured)";

/** What each channel's PUT is, for its operation and its description. */
const PUT_DOCS: Record<KnownChannel, { operationId: string; summary: string; what: string }> = {
  sms: {
    operationId: "putSmsChannel",
    summary: "Set the SMS provider",
    what:
      'Twilio: {"provider": "twilio", "account_sid", "auth_token" (or "api_key_sid" and "api_key_secret"), ' +
      '"from" (E.164) or "messaging_service_sid" (MG and 32 hex digits)}.',
  },
  email: {
    operationId: "putEmailChannel",
    summary: "Set the e-mail provider",
    what:
      'SendGrid {"provider": "sendgrid", "api_key", "from", "reply_to"?} or an SMTP relay {"provider": "smtp", ' +
      '"host", "port", "secure", "user"?, "pass"?, "from"}.',
  },
  slack: {
    operationId: "putSlackChannel",
    summary: "Set the Slack webhook",
    what: 'A Slack incoming webhook: {"webhook_url"} (https).',
  },
  hook: {
    operationId: "putHookChannel",
    summary: "Set the tenant's own hook",
    what:
      'The tenant\'s own receiver instead of the deployment\'s default hook: {"url" (https), "secret" (whsec_ and ' +
      "base64 of at least 24 bytes)}; follow-ups are signed with it (Standard Webhooks).",
  },
};

/** The keyring, or 409 not_configured naming the variable. */
function keyringOf(deps: AppDeps): SealingKeyring {
  if (deps.channelSecrets === undefined) {
    throw new HttpError(
      409,
      "not_configured",
      "channel settings need CHANNEL_SECRETS_KEY on lead-intake (32 bytes in base64, e.g. `openssl rand -base64 32`) " +
        "to seal their secrets; it is not set",
    );
  }
  return deps.channelSecrets;
}

/** The view of a stored record; a secret that does not open fails closed, logged once at error. */
function viewOrFail(
  keyring: SealingKeyring,
  stored: Revisioned<ChannelSettingsRecord>,
  log: FastifyBaseLogger,
): ChannelView {
  try {
    return maskedView(keyring, stored);
  } catch (err) {
    if (!(err instanceof UnreadableSecretError)) throw err;
    log.error(
      { tenant: stored.tenant, channel: err.channel, field: err.field, reason: err.reason },
      "channel_secret_unreadable",
    );
    throw new HttpError(
      500,
      "internal_error",
      `the stored ${err.field} of channel ${err.channel} does not open with CHANNEL_SECRETS_KEY or ` +
        "CHANNEL_SECRETS_KEYS_OLD; it has been logged. PUT the channel again to replace it",
    );
  }
}

/** /v1/channels: the caller's tenant's provider settings per channel, secrets sealed at rest. */
export const channelRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const one = okEnvelope(ChannelView);

  app.get(
    "/v1/channels",
    {
      schema: {
        operationId: "listChannels",
        tags: [TAG],
        summary: "List channel settings",
        description: `Every channel the caller's tenant has configured, with its revision. ${MASKING}`,
        response: {
          200: jsonResponse("The tenant's channels", okEnvelope(ChannelList)),
          ...errorResponses([401, 409, 429, 500, 503], { 409: NOT_CONFIGURED, 500: UNREADABLE }),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const store = channelStore(deps.broker.handles());
      const stored = await onBroker("listing channels", () => store.list(tenant));
      if (stored.length === 0) return { ok: true as const, data: { count: 0, channels: [] } };
      const keyring = keyringOf(deps);
      const channels = stored.map((s) => viewOrFail(keyring, s, request.log));
      return { ok: true as const, data: { count: channels.length, channels } };
    },
  );

  app.get(
    "/v1/channels/:channel",
    {
      schema: {
        operationId: "getChannel",
        tags: [TAG],
        summary: "Read a channel's settings",
        description:
          "The channel's settings and revision, which the ETag header repeats (quoted): send it back as If-Match " +
          `to replace or delete exactly this revision. ${MASKING}`,
        params: ChannelParams,
        response: {
          200: jsonResponse("The channel's settings", one),
          ...errorResponses([400, 401, 404, 409, 429, 500, 503], {
            400: `validation_error: the channel is not one of ${CHANNEL_NAMES.join(", ")}`,
            404: "not_found: the caller's tenant has not configured this channel",
            409: NOT_CONFIGURED,
            500: UNREADABLE,
          }),
        },
      },
      config,
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const store = channelStore(deps.broker.handles());
      const stored = await onBroker("reading the channel", () => store.get(tenant, request.params.channel));
      if (stored === null) throw notFound("channel");
      const view = viewOrFail(keyringOf(deps), stored, request.log);
      withEtag(reply, stored.revision);
      return { ok: true as const, data: view };
    },
  );

  for (const channel of CHANNEL_NAMES) {
    const docs = PUT_DOCS[channel];
    app.put(
      `/v1/channels/${channel}`,
      {
        schema: {
          operationId: docs.operationId,
          tags: [TAG],
          summary: docs.summary,
          description:
            `${docs.what} 201 when it is new, 200 when it replaces the settings (the whole of them: secrets are ` +
            "given again, and sealed under the current CHANNEL_SECRETS_KEY). If-Match (a revision, quoted or not, " +
            `or *) replaces only that revision (412 revision_mismatch otherwise). Every bad field is named. ${MASKING}`,
          headers: ConditionalHeaders,
          body: CHANNEL_SETTINGS[channel],
          response: {
            200: jsonResponse("The settings replaced others; the new revision is the ETag", one),
            201: jsonResponse("The settings were stored; their revision is the ETag", one),
            ...errorResponses([400, 401, 409, 412, 413, 415, 429, 500, 503], {
              400: "validation_error naming each bad field of the body, or If-Match; or invalid_json",
              409: NOT_CONFIGURED,
            }),
          },
        },
      },
      async (request, reply) => {
        const tenant = tenantOf(request);
        const keyring = keyringOf(deps);
        const ifMatch = request.headers["if-match"];
        const body = request.body as Record<string, string | number | boolean | undefined>;
        const fields = sealSettings(keyring, tenant, channel, body);
        const store = channelStore(deps.broker.handles());
        const written = await onBroker("storing the channel", () =>
          store.put(tenant, channel, fields, revisionCondition(ifMatch), deps.now()),
        );
        const stored = answerWrite(reply, WHAT, channel, ifMatch, written);
        request.log.info(
          {
            tenant,
            channel,
            ...(typeof body.provider === "string" ? { provider: body.provider } : {}),
            revision: stored.revision,
            status: written.status,
            key_id: keyring.current.id,
          },
          "channel_stored",
        );
        return { ok: true as const, data: viewOrFail(keyring, stored, request.log) };
      },
    );
  }

  app.delete(
    "/v1/channels/:channel",
    {
      schema: {
        operationId: "deleteChannel",
        tags: [TAG],
        summary: "Delete a channel's settings",
        description:
          "Deletes the channel's settings, secrets included; with If-Match only the revision it names. The " +
          "channel then uses the deployment's default where it has one (the hook), or cannot send.",
        params: ChannelParams,
        headers: ConditionalHeaders,
        response: {
          200: jsonResponse("The channel's settings were deleted", okEnvelope(ChannelDeleted)),
          ...errorResponses([400, 401, 404, 412, 429, 500, 503], {
            400: "validation_error: the channel or If-Match breaks its rule",
            404: "not_found: the caller's tenant has not configured this channel",
          }),
        },
      },
      config,
    },
    async (request) => {
      const tenant = tenantOf(request);
      const { channel } = request.params;
      const ifMatch = request.headers["if-match"];
      const store = channelStore(deps.broker.handles());
      const deleted = await onBroker("deleting the channel", () =>
        store.delete(tenant, channel, revisionCondition(ifMatch)),
      );
      answerDeletion(WHAT.one, channel, ifMatch, deleted);
      request.log.info({ tenant, channel }, "channel_deleted");
      return { ok: true as const, data: { name: channel, deleted: true as const } };
    },
  );
};
