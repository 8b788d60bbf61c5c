import { errorEnvelope } from "@followup/service-kit";

/**
 * A service the console calls (lead-intake; the reports service for `/v1/reports/*`): always with
 * the signed-in caller's own x-api-key, so the console can do nothing that caller could not do
 * with curl.
 */

/** Request headers passed on; nothing else of the browser's (no cookie) goes. */
const REQUEST_HEADERS = ["x-api-key", "content-type", "if-match", "if-none-match", "accept"] as const;
/** Response headers passed back to the browser. */
const RESPONSE_HEADERS = ["content-type", "etag", "retry-after", "location", "x-request-id"] as const;

/** Paths the proxy passes to lead-intake, checked after the URL is normalised (`/v1/../metrics` is not one). */
const PROXIED = /^\/(v1|ops)\//;
/** The paths of the reports service (the same check: `/v1/reports/../lead/x` is lead-intake's). */
export const REPORTS_PATHS = /^\/v1\/reports\//;

export interface UpstreamAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface UpstreamRequest {
  method: string;
  /** The path and query, as the browser sent them. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body?: Buffer | undefined;
}

export class Upstream {
  constructor(
    readonly baseUrl: string,
    readonly timeoutMs: number,
    /** How a 503 names it. */
    readonly name: string = "lead-intake",
    /** The normalised paths it is sent. */
    readonly paths: RegExp = PROXIED,
  ) {}

  /** The URL of a proxied path, or null when the normalised path is not one of `paths`. */
  target(url: string): URL | null {
    let target: URL;
    try {
      target = new URL(url, this.baseUrl);
    } catch {
      return null;
    }
    if (target.origin !== new URL(this.baseUrl).origin || !this.paths.test(target.pathname)) return null;
    return target;
  }

  /** Sends the request on; a service that does not answer is a 503 envelope. */
  async forward(request: UpstreamRequest, requestId: string): Promise<UpstreamAnswer> {
    const target = this.target(request.url);
    if (target === null) {
      return json(
        404,
        errorEnvelope("not_found", `no route ${request.method} ${request.url.split("?")[0]}`, requestId),
      );
    }
    const headers: Record<string, string> = { "x-request-id": requestId };
    for (const name of REQUEST_HEADERS) {
      const value = request.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    const hasBody = request.body !== undefined && request.body.length > 0;
    try {
      const res = await fetch(target, {
        method: request.method,
        headers,
        ...(hasBody ? { body: request.body } : {}),
        redirect: "manual",
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const answer: Record<string, string> = {};
      for (const name of RESPONSE_HEADERS) {
        const value = res.headers.get(name);
        if (value !== null) answer[name] = value;
      }
      return { status: res.status, headers: answer, body: Buffer.from(await res.arrayBuffer()) };
    } catch (err) {
      const reason = (err as Error).name === "TimeoutError" ? "did not answer in time" : "is unreachable";
      return json(503, errorEnvelope("service_unavailable", `${this.name} ${reason}`, requestId));
    }
  }

  /** A GET with the caller's key, answered as JSON. */
  async get(path: string, apiKey: string, requestId: string): Promise<{ status: number; body: unknown }> {
    const answer = await this.forward(
      { method: "GET", url: path, headers: { "x-api-key": apiKey, accept: "application/json" } },
      requestId,
    );
    try {
      return { status: answer.status, body: JSON.parse(answer.body.toString("utf8")) };
    } catch {
      return {
        status: 503,
        body: errorEnvelope("service_unavailable", `${this.name} answered something not JSON`, requestId),
      };
    }
  }
}

function json(status: number, body: unknown): UpstreamAnswer {
  return {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
    body: Buffer.from(JSON.stringify(body)),
  };
}
