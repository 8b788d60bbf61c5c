import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * What the fake providers share: a real HTTP server on 127.0.0.1 that records every request and
 * a script of failures to answer "for a while". Each fake checks a request the way its provider
 * does and answers with the provider's documented bodies; this part knows no provider.
 */

/** One request a fake received, with what it answered. */
export interface FakeRequest {
  receivedAt: number;
  method: string;
  /** Path and query. */
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  /** The status the fake answered. */
  status: number;
  /** The body the fake answered. */
  answer: string;
}

/** A request as a fake's answer sees it. */
export type SeenRequest = Omit<FakeRequest, "status" | "answer">;

export interface FakeReply {
  status: number;
  headers?: Record<string, string>;
  /** Absent: no body (SendGrid's 202). */
  body?: string;
}

/** The next `times` checked requests get a failure instead of their answer. */
export class FailureScript<F> {
  readonly #queue: { failure: F; left: number }[] = [];

  push(failure: F, times: number): void {
    if (times > 0) this.#queue.push({ failure, left: times });
  }

  /** The failure for this request, if one is scripted. */
  take(): F | undefined {
    const head = this.#queue[0];
    if (!head) return undefined;
    head.left--;
    if (head.left === 0) this.#queue.shift();
    return head.failure;
  }

  /** Drops every failure still scripted. */
  clear(): void {
    this.#queue.length = 0;
  }
}

export class FakeHttpServer {
  readonly requests: FakeRequest[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #url = "";

  constructor(answer: (request: SeenRequest) => FakeReply) {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const seen = {
          receivedAt: Date.now(),
          method: req.method ?? "",
          path: req.url ?? "",
          headers: req.headers,
          raw: Buffer.concat(chunks).toString("utf8"),
        };
        let reply: FakeReply;
        try {
          reply = answer(seen);
        } catch (err) {
          reply = { status: 500, body: `fake provider failed: ${String(err)}` };
        }
        this.requests.push({ ...seen, status: reply.status, answer: reply.body ?? "" });
        res.writeHead(reply.status, reply.headers).end(reply.body);
      });
    });
    this.#server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return this.#url;
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen({ host: "127.0.0.1", port: 0 }, () => resolve());
    });
    this.#url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  /** Stops listening and drops open connections. Idempotent. */
  async close(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}

/**
 * A fake provider: an HTTP server whose answers the subclass decides, plus a failure script of
 * the subclass's failure kinds.
 */
export abstract class FakeProvider<Failure> {
  protected readonly failures = new FailureScript<Failure>();
  readonly #http = new FakeHttpServer((request) => this.answer(request));

  /** The base URL: what TWILIO_API_URL or SENDGRID_API_URL is set to. */
  get url(): string {
    return this.#http.url;
  }

  /** Every request, answered or refused. */
  get requests(): FakeRequest[] {
    return this.#http.requests;
  }

  /** Drops the failures still scripted. */
  clearFailures(): void {
    this.failures.clear();
  }

  async listen(): Promise<this> {
    await this.#http.listen();
    return this;
  }

  close(): Promise<void> {
    return this.#http.close();
  }

  protected abstract answer(request: SeenRequest): FakeReply;
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): FakeReply {
  return { status, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
}

/** The header's single value (a repeated header is refused as the providers' edges do). */
export function single(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? undefined : value;
}

/** The media type of `content-type`, lower-cased, without parameters. */
export function mediaType(headers: IncomingHttpHeaders): string {
  return (single(headers, "content-type") ?? "").split(";")[0]!.trim().toLowerCase();
}
