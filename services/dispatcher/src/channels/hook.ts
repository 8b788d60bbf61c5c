import { strategyName } from "@followup/contracts";
import { parseWebhookSecret, webhookHeaders } from "@followup/service-kit";
import { Agent, Pool } from "undici";
import { classifyError, classifyStatus, describeError } from "../classify.js";
import { parseRetryAfter } from "../retry-after.js";
import type { Channel, ChannelAnswer, ChannelFollowup } from "./channel.js";
import { CallDeadline } from "./provider/deadline.js";
import { readBounded, undiciTimeouts } from "./provider/http.js";
import type { ChannelSettingsSource } from "./settings.js";

export const HOOK_CHANNEL = "hook";
export const USER_AGENT = "auto-followup-engine-dispatcher/0.1 (+followup hook)";

/** How much of a refusing receiver's body is kept for the result's error text. */
const ERROR_BODY_CHARS = 200;
/** Bodies are read (so the connection can be reused) up to this size; a larger one closes the connection. */

export interface HookChannelOptions {
  /** The channel's name in the registry; "hook" unless several hooks are registered. */
  name?: string;
  url: string;
  /** The decoded Standard Webhooks key (parseWebhookSecret). */
  secret: Buffer;
  /**
   * The whole call's deadline, from dispatch to the response headers (an AbortSignal, precise to
   * the millisecond); the pool's connect (at most 5 s), headers and body timeouts back it up.
   */
  timeoutMs: number;
  /** Connections in the keep-alive pool, and so calls in flight. */
  concurrency: number;
  /** The tenants' own hook settings (`/v1/channels/hook`): a tenant that set one is called there. */
  settings?: ChannelSettingsSource;
  now?: () => Date;
}

/** The body the system this replaces POSTed, plus tenant, step, due_at and attempt. */
export function hookPayload(followup: ChannelFollowup, now: Date) {
  const { due } = followup;
  return {
    lead_id: due.lead_id,
    strategy: strategyName(due.delay_s),
    message: `Auto follow-up at +${due.delay_s}s`,
    ts: now.toISOString(),
    tenant: followup.tenant,
    step: due.step,
    due_at: due.due_at,
    attempt: followup.attempt,
  };
}

/**
 * The HTTP hook: a signed POST to FOLLOWUP_HOOK_URL. `webhook-id` is the follow-up's idempotency
 * key, the same on every attempt, so the receiver drops duplicates; the signature replaces the
 * API key the old system forwarded, so no credential travels through the broker.
 */
export class HookChannel implements Channel {
  readonly name: string;
  readonly concurrency: number;
  readonly #pool: Pool;
  readonly #path: string;
  readonly #secret: Buffer;
  readonly #now: () => Date;
  readonly #timeoutMs: number;
  readonly #settings: ChannelSettingsSource | undefined;
  readonly #timeouts: Pool.Options;
  #agent: Agent | undefined;

  constructor(options: HookChannelOptions) {
    const url = new URL(options.url);
    this.name = options.name ?? HOOK_CHANNEL;
    this.concurrency = options.concurrency;
    this.#path = `${url.pathname}${url.search}`;
    this.#secret = options.secret;
    this.#now = options.now ?? (() => new Date());
    this.#timeoutMs = options.timeoutMs;
    this.#settings = options.settings;
    this.#timeouts = undiciTimeouts(options.timeoutMs);
    this.#pool = new Pool(url.origin, { connections: options.concurrency, pipelining: 1, ...this.#timeouts });
  }

  async send(followup: ChannelFollowup): Promise<ChannelAnswer> {
    const own = this.#settings ? await this.#settings.get(followup.tenant, "hook") : undefined;
    if (own && !own.found && own.why !== "not_configured") {
      return {
        classification: { kind: "permanent" },
        statusCode: null,
        reason: "invalid_settings",
        error:
          own.why === "no_key"
            ? "channel hook: CHANNEL_SECRETS_KEY is not set on the dispatcher, so the tenant's hook secret cannot be opened"
            : "channel hook: the tenant's hook secret does not open with CHANNEL_SECRETS_KEY or CHANNEL_SECRETS_KEYS_OLD",
      };
    }
    // The tenant's own receiver when it set one, else the deployment's FOLLOWUP_HOOK_URL.
    const target = own?.found
      ? {
          dispatcher: this.#tenantAgent(),
          url: new URL(own.settings.url),
          secret: parseWebhookSecret(own.settings.secret),
        }
      : { dispatcher: this.#pool, url: undefined, secret: this.#secret };
    const body = JSON.stringify(hookPayload(followup, this.#now()));
    const headers = {
      "content-type": "application/json",
      "user-agent": USER_AGENT,
      ...webhookHeaders(target.secret, followup.idempotencyKey, body),
    };
    // The exact deadline, or the forced stop, ends the call (undici's own timeouts back it up).
    const deadline = new CallDeadline(this.#timeoutMs, followup.signal);
    try {
      let response: Awaited<ReturnType<Pool["request"]>>;
      try {
        response = await target.dispatcher.request({
          ...(target.url
            ? { origin: target.url.origin, path: `${target.url.pathname}${target.url.search}` }
            : { path: this.#path }),
          method: "POST",
          headers,
          body,
          signal: deadline.signal,
        });
      } catch (err) {
        const error = deadline.timedOut
          ? `timeout: no response within ${this.#timeoutMs} ms`
          : describeError(err);
        return { classification: classifyError(err), statusCode: null, error };
      }
      const statusCode = response.statusCode;
      // The status decides; the body only explains a refusal. A receiver that answered 2xx got
      // the follow-up even if its body then stalls, so a body error never turns into a retry.
      const text = await readBounded(response.body).catch(() => "");
      const classification = classifyStatus(statusCode);
      if (classification.kind === "delivered") return { classification, statusCode };
      const retryAfterMs = parseRetryAfter(response.headers["retry-after"], this.#now());
      const snippet = text.replace(/\s+/g, " ").trim().slice(0, ERROR_BODY_CHARS);
      return {
        classification,
        statusCode,
        error: `HTTP ${statusCode}${snippet ? `: ${snippet}` : ""}`,
        ...(retryAfterMs !== null ? { retryAfterMs } : {}),
      };
    } finally {
      deadline.end();
    }
  }

  /** One keep-alive Agent for every tenant's own receiver, made when the first is called. */
  #tenantAgent(): Agent {
    this.#agent ??= new Agent({ connections: this.concurrency, pipelining: 1, ...this.#timeouts });
    return this.#agent;
  }

  async close(): Promise<void> {
    await Promise.all([this.#pool.close(), this.#agent?.close()]);
  }

  /** Abandons calls in flight: for a shutdown that can wait no longer. */
  async destroy(): Promise<void> {
    await Promise.all([this.#pool.destroy(), this.#agent?.destroy()]);
  }
}
