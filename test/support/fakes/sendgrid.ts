import { randomBytes } from "node:crypto";
import { FakeProvider, type FakeReply, json, mediaType, type SeenRequest, single } from "./fake-http.js";

/**
 * A fake SendGrid v3 Mail Send (`POST /v3/mail/send`) that checks each request as SendGrid does:
 * `Authorization: Bearer <key>` with a key it issued, a JSON body with 1-1000 `personalizations`
 * each with a `to` of valid addresses, `from.email`, a `subject`, `content` of `{type, value}`
 * (text/plain before text/html), string-valued `headers`. It answers 202 with `X-Message-Id` and
 * no body, or SendGrid's error body `{"errors":[{"field","message","help"}]}`.
 */

/** One e-mail SendGrid accepted: the parsed request body. */
export interface SendGridMailRecord {
  messageId: string;
  apiKey: string;
  // biome-ignore lint/suspicious/noExplicitAny: the request body as sent, checked above
  body: any;
}

export type SendGridFailure =
  | "too_many_requests" // 429
  | "server_error" // 500
  | "bad_request" // 400
  | "unauthorized" // 401
  | "forbidden" // 403
  | "payload_too_large"; // 413

const FAILURES: Record<SendGridFailure, [number, string | null, string]> = {
  too_many_requests: [429, null, "too many requests"],
  server_error: [500, null, "internal error"],
  bad_request: [400, "personalizations.0.to.0.email", "Does not contain a valid address."],
  unauthorized: [401, null, "The provided authorization grant is invalid, expired, or revoked"],
  forbidden: [403, null, "access forbidden"],
  payload_too_large: [413, null, "The JSON payload you have included in your request is too large."],
};

const ADDRESS = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;

export function sendGridError(
  status: number,
  errors: { field: string | null; message: string }[],
  headers: Record<string, string> = {},
): FakeReply {
  return json(status, { errors: errors.map((e) => ({ ...e, help: null })) }, headers);
}

export class FakeSendGrid extends FakeProvider<{
  failure: SendGridFailure;
  headers: Record<string, string>;
}> {
  /** The API key the tests configure. */
  readonly apiKey = `SG.${randomBytes(11).toString("base64url")}.${randomBytes(32).toString("base64url")}`;
  readonly mails: SendGridMailRecord[] = [];

  /**
   * The next `times` authenticated requests fail so. A 429 carries SendGrid's rate-limit headers
   * when `rateLimitResetInS` is given (X-RateLimit-Reset that many seconds from now), none otherwise.
   */
  failNext(
    failure: SendGridFailure,
    options: { times?: number; rateLimitResetInS?: number; headers?: Record<string, string> } = {},
  ): void {
    const headers = { ...options.headers };
    if (options.rateLimitResetInS !== undefined) {
      headers["x-ratelimit-limit"] = "600";
      headers["x-ratelimit-remaining"] = "0";
      headers["x-ratelimit-reset"] = String(Math.floor(Date.now() / 1000) + options.rateLimitResetInS);
    }
    this.failures.push({ failure, headers }, options.times ?? 1);
  }

  protected answer(request: SeenRequest): FakeReply {
    if (request.method !== "POST" || request.path !== "/v3/mail/send")
      return sendGridError(404, [{ field: null, message: "Not Found" }]);
    const bearer = /^Bearer (\S+)$/.exec(single(request.headers, "authorization") ?? "");
    if (!bearer || bearer[1] !== this.apiKey)
      return sendGridError(401, [{ field: null, message: FAILURES.unauthorized[2] }]);
    const scripted = this.failures.take();
    if (scripted) {
      const [status, field, message] = FAILURES[scripted.failure];
      return sendGridError(status, [{ field, message }], scripted.headers);
    }
    if (mediaType(request.headers) !== "application/json")
      return sendGridError(415, [{ field: null, message: "Content-Type should be application/json." }]);
    let body: unknown;
    try {
      body = JSON.parse(request.raw);
    } catch {
      return sendGridError(400, [{ field: null, message: "Bad Request" }]);
    }
    const problems = mailProblems(body);
    if (problems.length > 0) return sendGridError(400, problems);
    const messageId = randomBytes(16).toString("base64url").slice(0, 22);
    this.mails.push({ messageId, apiKey: bearer[1], body });
    return { status: 202, headers: { "x-message-id": messageId } };
  }
}

/** What SendGrid would refuse in a Mail Send body, each naming its field as SendGrid does. */
export function mailProblems(body: unknown): { field: string | null; message: string }[] {
  const problems: { field: string | null; message: string }[] = [];
  const b = (body ?? {}) as Record<string, unknown>;
  const personalizations = b.personalizations;
  if (!Array.isArray(personalizations) || personalizations.length === 0 || personalizations.length > 1000) {
    problems.push({
      field: "personalizations",
      message: "The personalizations field is required and must have at least one personalization.",
    });
  } else {
    personalizations.forEach((p: unknown, i) => {
      const to = (p as { to?: unknown } | null)?.to;
      if (!Array.isArray(to) || to.length === 0)
        problems.push({
          field: `personalizations.${i}.to`,
          message:
            "The to array is required for all personalization objects, and must have at least one email object with a valid email address.",
        });
      else
        to.forEach((r: unknown, j) => {
          const email = (r as { email?: unknown } | null)?.email;
          if (typeof email !== "string" || !ADDRESS.test(email))
            problems.push({
              field: `personalizations.${i}.to.${j}.email`,
              message: "Does not contain a valid address.",
            });
        });
    });
  }
  const from = (b.from as { email?: unknown } | undefined)?.email;
  if (typeof from !== "string" || !ADDRESS.test(from))
    problems.push({ field: "from.email", message: "The from email does not contain a valid address." });
  const everySubject =
    Array.isArray(personalizations) &&
    personalizations.every((p: unknown) => typeof (p as { subject?: unknown })?.subject === "string");
  if ((typeof b.subject !== "string" || b.subject === "") && !everySubject)
    problems.push({
      field: "subject",
      message:
        "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.",
    });
  const content = b.content;
  if (!Array.isArray(content) || content.length === 0) {
    problems.push({
      field: "content",
      message: "Unless a valid template_id is provided, the content parameter is required.",
    });
  } else {
    content.forEach((c: unknown, i) => {
      const { type, value } = (c ?? {}) as { type?: unknown; value?: unknown };
      if (typeof type !== "string" || typeof value !== "string" || value === "")
        problems.push({
          field: `content.${i}.value`,
          message: "The content value must be a string at least one character in length.",
        });
    });
    const types = content.map((c: unknown) => (c as { type?: unknown })?.type);
    const plain = types.indexOf("text/plain");
    if (plain > 0)
      problems.push({
        field: "content",
        message: "If present, text/plain content must be first, followed by any other content.",
      });
  }
  if (b.headers !== undefined) {
    const headers = b.headers as Record<string, unknown>;
    if (
      typeof headers !== "object" ||
      headers === null ||
      Object.values(headers).some((v) => typeof v !== "string")
    )
      problems.push({ field: "headers", message: "Invalid type. Expected: object, given: string." });
  }
  return problems;
}

/** A fake SendGrid on 127.0.0.1 with one API key (`fake.apiKey`). */
export function startFakeSendGrid(): Promise<FakeSendGrid> {
  return new FakeSendGrid().listen();
}
