import { isValidToken } from "@followup/contracts";
import { verifyTwilioSignature } from "@followup/service-kit";
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from "fastify";
import { channelStore, openSettings, UnreadableSecretError } from "../channels/index.js";
import type { AppDeps } from "../deps.js";
import { HttpError, notFound, onBroker } from "../errors.js";

/**
 * What Twilio's calls to lead-intake (inbound SMS, status callbacks) share: the form, verified
 * with `X-Twilio-Signature` against the tenant's sms auth token over the public URL (built from
 * PUBLIC_BASE_URL, never from the Host header). Anything that keeps the signature from being
 * checked (no PUBLIC_BASE_URL, no sms settings, no auth token, no key to open it) is a 403, like
 * a bad signature: nothing is acted on unverified.
 */

/** Twilio's calls are form-encoded: parsed as text in the plugin of their route only. */
export function acceptTwilioForm(app: FastifyInstance): void {
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string", bodyLimit: 16_384 },
    (_request, body, done) => done(null, body),
  );
}

const refused = () => new HttpError(403, "invalid_signature", "the X-Twilio-Signature does not verify");

/** The tenant's Twilio auth token, or null when there is none to check a signature with. */
async function authTokenOf(deps: AppDeps, tenant: string, log: FastifyBaseLogger): Promise<string | null> {
  if (deps.channelSecrets === undefined) return null;
  const handles = deps.broker.handles();
  const stored = await onBroker("reading the sms channel", () => channelStore(handles).get(tenant, "sms"));
  if (stored === null) return null;
  try {
    const token = openSettings(deps.channelSecrets, stored).settings.auth_token;
    return typeof token === "string" ? token : null;
  } catch (err) {
    if (!(err instanceof UnreadableSecretError)) throw err;
    log.error(
      { tenant, channel: err.channel, field: err.field, reason: err.reason },
      "channel_secret_unreadable",
    );
    return null;
  }
}

/** The tenant of `/hooks/twilio/<hook>/:tenant` and its verified form, or a 403 (404 for a bad tenant). */
export async function verifiedTwilioForm(
  deps: AppDeps,
  request: FastifyRequest,
  hook: "inbound" | "status",
): Promise<{ tenant: string; form: URLSearchParams; query: URLSearchParams }> {
  const { tenant } = request.params as { tenant: string };
  if (!isValidToken(tenant)) throw notFound("tenant");
  const base = deps.config.PUBLIC_BASE_URL?.replace(/\/+$/, "");
  if (base === undefined) {
    request.log.error({ tenant, hook }, "twilio_hook_without_public_base_url");
    throw refused();
  }
  const raw = typeof request.body === "string" ? request.body : "";
  const form = new URLSearchParams(raw);
  const query = request.url.includes("?") ? request.url.slice(request.url.indexOf("?")) : "";
  const url = `${base}/hooks/twilio/${hook}/${tenant}${query}`;
  const authToken = await authTokenOf(deps, tenant, request.log);
  if (
    authToken === null ||
    !verifyTwilioSignature(url, form, request.headers["x-twilio-signature"], authToken)
  ) {
    request.log.warn({ tenant, hook, configured: authToken !== null }, "twilio_signature_refused");
    throw refused();
  }
  return { tenant, form, query: new URLSearchParams(query) };
}
