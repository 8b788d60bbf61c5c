import { Agent, type Dispatcher, Pool, request } from "undici";
import { type OutboundMessage, type ProviderAnswer, type ProviderClient, unanswered } from "./answer.js";
import { CallDeadline } from "./deadline.js";

/** Options every HTTP provider client takes. */
export interface ProviderHttpOptions {
  /** The whole call's deadline, from dispatch to the end of the (small) response body. */
  timeoutMs: number;
  /** Connections per origin, and so calls in flight to it. */
  connections: number;
}

export const DEFAULT_PROVIDER_HTTP: ProviderHttpOptions = { timeoutMs: 10_000, connections: 16 };

/** Provider bodies are small; a larger one is cut here (the status already decided). */
const MAX_BODY_BYTES = 64 * 1024;

export interface ProviderResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * An undici dispatcher's own timeouts for calls whose exact deadline is a CallDeadline: keep-alive,
 * a connect of at most 5 s, and header and body timeouts a second after the deadline, as a backup
 * that never races it (on a loaded machine both fired in the same turn and undici's error won).
 */
export function undiciTimeouts(timeoutMs: number) {
  return {
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
    connectTimeout: Math.min(timeoutMs, 5_000),
    headersTimeout: timeoutMs + 1_000,
    bodyTimeout: timeoutMs + 1_000,
  };
}

export type CallResult =
  | { ok: true; response: ProviderResponse }
  | { ok: false; error: unknown; timedOut: boolean };

/**
 * The HTTP side of a provider client: one undici dispatcher (a keep-alive Pool for one API
 * origin, an Agent for per-tenant URLs such as Slack webhooks) and calls with an exact deadline.
 * A call never throws: it returns the response or the error, for the client to classify.
 */
export class ProviderHttp {
  readonly #dispatcher: Dispatcher & { close(): Promise<void>; destroy(): Promise<void> };
  readonly #timeoutMs: number;

  /** `origin` pins a Pool to one API origin; without it an Agent serves any origin. */
  constructor(options: ProviderHttpOptions, origin?: string) {
    this.#timeoutMs = options.timeoutMs;
    const timeouts = undiciTimeouts(options.timeoutMs);
    this.#dispatcher = origin
      ? new Pool(origin, { connections: options.connections, pipelining: 1, ...timeouts })
      : new Agent({ connections: options.connections, pipelining: 1, ...timeouts });
  }

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  async post(
    url: string,
    headers: Record<string, string>,
    body: string,
    signal?: AbortSignal,
  ): Promise<CallResult> {
    const deadline = new CallDeadline(this.#timeoutMs, signal);
    try {
      const response = await request(url, {
        dispatcher: this.#dispatcher,
        method: "POST",
        headers,
        body,
        signal: deadline.signal,
      });
      const text = await readBounded(response.body).catch(() => "");
      return { ok: true, response: { statusCode: response.statusCode, headers: response.headers, text } };
    } catch (error) {
      return { ok: false, error, timedOut: deadline.timedOut };
    } finally {
      deadline.end();
    }
  }

  close(): Promise<void> {
    return this.#dispatcher.close();
  }

  destroy(): Promise<void> {
    return this.#dispatcher.destroy();
  }
}

/** A response body, at most MAX_BODY_BYTES of it (a receiver may answer with anything): for results and errors. */
export async function readBounded(body: AsyncIterable<Buffer> & { destroy(): unknown }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString("utf8");
}

export interface HttpClientOptions extends Partial<ProviderHttpOptions> {
  now?: () => Date;
}

/**
 * What the HTTP provider clients share: one ProviderHttp, the clock for Retry-After, close and
 * destroy, and a post whose failure to get any answer is already classified and scrubbed.
 */
export abstract class HttpProviderClient<Settings> implements ProviderClient<Settings> {
  abstract readonly provider: string;
  protected readonly now: () => Date;
  readonly #http: ProviderHttp;

  /** `origin` pins the pool to one API origin; none: an Agent for the tenants' own URLs. */
  constructor(options: HttpClientOptions, origin?: string) {
    this.#http = new ProviderHttp({ ...DEFAULT_PROVIDER_HTTP, ...options }, origin);
    this.now = options.now ?? (() => new Date());
  }

  abstract send(settings: Settings, message: OutboundMessage, signal?: AbortSignal): Promise<ProviderAnswer>;

  protected async post(
    url: string,
    headers: Record<string, string>,
    body: string,
    secrets: readonly string[],
    signal?: AbortSignal,
  ): Promise<{ response: ProviderResponse } | { answer: ProviderAnswer }> {
    const call = await this.#http.post(url, headers, body, signal);
    if (call.ok) return { response: call.response };
    const timedOutAfterMs = call.timedOut ? this.#http.timeoutMs : undefined;
    return { answer: unanswered(this.provider, call.error, secrets, timedOutAfterMs) };
  }

  close(): Promise<void> {
    return this.#http.close();
  }

  destroy(): Promise<void> {
    return this.#http.destroy();
  }
}

/** Whether `url` is an http(s) URL with nothing in it that breaks a header (`<`, `>`, spaces). */
export function isHttpUrl(url: string | undefined): url is string {
  if (!url || /[\s<>]/.test(url)) return false;
  try {
    const { protocol } = new URL(url);
    return protocol === "https:" || protocol === "http:";
  } catch {
    return false;
  }
}

/** A header's first value. */
export function headerValue(headers: ProviderResponse["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `base` without a trailing slash, checked to be http(s); throws naming `variable`. */
export function baseUrl(base: string, variable: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new Error(`${variable}: expected an http(s) URL; got ${JSON.stringify(base)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new Error(`${variable}: expected an http(s) URL; got ${JSON.stringify(base)}`);
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}
