import { randomBytes } from "node:crypto";
import { FakeProvider, type FakeReply, mediaType, type SeenRequest } from "./fake-http.js";

/**
 * A fake Slack incoming webhook (`POST /services/T…/B…/<secret>`) that checks each request as
 * Slack does: a webhook it issued, a JSON body with a `text` (or `blocks`, an array). It answers
 * 200 `ok`, or Slack's plain-text errors: 400 `invalid_payload` and `no_text`, 403
 * `action_prohibited`, 404 `channel_not_found` (`no_service` for an unknown webhook), 410
 * `channel_is_archived`, 429 with `Retry-After`, 500 `rollup_error`.
 */

export interface SlackPostRecord {
  webhookPath: string;
  text?: string;
  blocks?: unknown[];
}

export type SlackFailure =
  | "invalid_payload" // 400
  | "action_prohibited" // 403
  | "channel_not_found" // 404
  | "channel_is_archived" // 410
  | "rate_limited" // 429
  | "rollup_error"; // 500

const STATUS: Record<SlackFailure, number> = {
  invalid_payload: 400,
  action_prohibited: 403,
  channel_not_found: 404,
  channel_is_archived: 410,
  rate_limited: 429,
  rollup_error: 500,
};

function text(status: number, body: string, headers: Record<string, string> = {}): FakeReply {
  return { status, headers: { "content-type": "text/html", ...headers }, body };
}

export class FakeSlack extends FakeProvider<{ failure: SlackFailure; headers: Record<string, string> }> {
  readonly posts: SlackPostRecord[] = [];
  readonly #paths = new Set<string>();

  /** A new webhook URL this fake accepts (the URL is the credential, as with Slack). */
  webhookUrl(): string {
    const id = () => randomBytes(5).toString("hex").toUpperCase();
    const path = `/services/T${id()}/B${id()}/${randomBytes(12).toString("base64url")}`;
    this.#paths.add(path);
    return `${this.url}${path}`;
  }

  /** The next `times` posts to a known webhook fail so (a 429 may carry `headers`, e.g. Retry-After). */
  failNext(failure: SlackFailure, options: { times?: number; headers?: Record<string, string> } = {}): void {
    this.failures.push({ failure, headers: options.headers ?? {} }, options.times ?? 1);
  }

  protected answer(request: SeenRequest): FakeReply {
    if (request.method !== "POST" || !this.#paths.has(request.path)) return text(404, "no_service");
    const scripted = this.failures.take();
    if (scripted) return text(STATUS[scripted.failure], scripted.failure, scripted.headers);
    if (mediaType(request.headers) !== "application/json") return text(400, "invalid_payload");
    let body: { text?: unknown; blocks?: unknown };
    try {
      body = JSON.parse(request.raw);
    } catch {
      return text(400, "invalid_payload");
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) return text(400, "invalid_payload");
    if (body.blocks !== undefined && !Array.isArray(body.blocks)) return text(400, "invalid_blocks");
    if (body.text !== undefined && typeof body.text !== "string") return text(400, "invalid_payload");
    if (!body.text && !(Array.isArray(body.blocks) && body.blocks.length > 0)) return text(400, "no_text");
    this.posts.push({
      webhookPath: request.path,
      ...(typeof body.text === "string" ? { text: body.text } : {}),
      ...(Array.isArray(body.blocks) ? { blocks: body.blocks } : {}),
    });
    return text(200, "ok");
  }
}

/** A fake Slack on 127.0.0.1; `fake.webhookUrl()` issues a webhook. */
export function startFakeSlack(): Promise<FakeSlack> {
  return new FakeSlack().listen();
}
