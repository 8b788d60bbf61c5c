import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { HookPayload } from "@followup/contracts";
import { waitFor } from "@followup/nats-harness";
import { parseWebhookSecret, verifyWebhook } from "@followup/service-kit";

/** One call the recorder received. */
export interface HookCall {
  /** Epoch ms when the body was complete: what "delivered at" means for timing asserts. */
  receivedAt: number;
  /** The `webhook-id` header: the follow-up's idempotency key `<tenant>:<leadId>:<step>`. */
  webhookId: string;
  headers: IncomingHttpHeaders;
  /** The caller's port: the same across calls when the caller keeps its connection alive. */
  remotePort: number;
  raw: string;
  /** The parsed body (undefined when it was not JSON). */
  body: HookPayload | undefined;
  /** Whether the Standard Webhooks signature verified with the shared secret. */
  verified: boolean;
  /** Why verification failed (missing_headers, bad_signature, ...). */
  verifyFailure?: string;
  /** Whether the body fits the HookPayload contract. */
  payloadValid: boolean;
  /** A verified call for a webhook-id already delivered, answered 2xx and dropped. */
  duplicate: boolean;
  /** What it answers (set on arrival, also when the answer is delayed); 0 when it refuses or hangs. */
  status: number;
}

/** How the recorder answers a call. */
export interface HookAnswer {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string>;
  /** Default `{"ok":true}` for 2xx, a short error text otherwise. */
  body?: string;
  /** Answer after this long. */
  delayMs?: number;
  /** Close the connection without answering (a connection error for the caller). */
  refuse?: boolean;
  /** Take the call and never answer (the caller's timeout ends it; `close` drops it). */
  hang?: boolean;
}

/** Decides the answer per call; `index` counts every call from 0. Return undefined for the default. */
export type HookResponder = (call: HookCall, index: number) => HookAnswer | undefined;

export interface HookRecorderOptions {
  /** The Standard Webhooks secret (`whsec_...`) the dispatchers sign with. */
  secret: string;
  /** The path calls are expected on. Default `/hook`. */
  path?: string;
  /** The port to listen on. Default: a free one. */
  port?: number;
  responder?: HookResponder;
}

/**
 * A follow-up receiver on 127.0.0.1 (node:http) that verifies Standard Webhooks signatures,
 * records every call with its receive time, accepts each webhook-id once (a later verified 2xx
 * call for it is a counted duplicate, dropped as a real receiver would), and answers as told:
 * a status, a delay, a refused connection or none at all. Unsigned or badly signed calls get 401.
 * A call is delivered when the recorder decides to answer it 2xx, on arrival, as a receiver that
 * commits before it answers: a delayed answer the caller never reads (it was killed) still counts.
 * The one hook receiver of the tests: the services' own tests use it too.
 */
export class HookRecorder {
  /** Every call, in arrival order. */
  readonly calls: HookCall[] = [];
  /** Verified calls answered 2xx, once per webhook-id: the follow-ups delivered. */
  readonly delivered = new Map<string, HookCall>();
  /** Calls open now: from the request's arrival until its answer is sent or its connection is gone. */
  open = 0;
  /** The most calls that were open at once. */
  maxOpen = 0;
  /** Calls taken and never answered (a `hang` answer). */
  hung = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #key: Buffer;
  readonly #path: string;
  readonly #port: number;
  #responder: HookResponder;
  #url = "";

  constructor(options: HookRecorderOptions) {
    this.#key = parseWebhookSecret(options.secret);
    this.#path = options.path ?? "/hook";
    this.#port = options.port ?? 0;
    this.#responder = options.responder ?? (() => undefined);
    this.#server = createServer((req, res) => {
      this.open++;
      this.maxOpen = Math.max(this.maxOpen, this.open);
      res.once("close", () => this.open--);
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const call = this.#record(
          req.headers,
          req.socket.remotePort ?? 0,
          Buffer.concat(chunks).toString("utf8"),
        );
        const index = this.calls.length;
        this.calls.push(call);
        if (req.url !== this.#path || req.method !== "POST") {
          call.status = 404;
          res.writeHead(404).end("no such hook");
          return;
        }
        if (!call.verified) {
          call.status = 401;
          res.writeHead(401, { "content-type": "text/plain" }).end(`signature: ${call.verifyFailure}`);
          return;
        }
        const answer = this.#responder(call, index) ?? {};
        if (answer.hang) {
          this.hung++;
          return; // answered never; the caller's timeout or close() ends the connection
        }
        const status = answer.refuse ? 0 : (answer.status ?? 200);
        const ok = status >= 200 && status < 300;
        call.status = status;
        if (ok) {
          if (this.delivered.has(call.webhookId)) call.duplicate = true;
          else this.delivered.set(call.webhookId, call);
        }
        const reply = () => {
          if (answer.refuse) {
            req.socket.destroy();
            return;
          }
          if (res.destroyed) return;
          res
            .writeHead(status, { "content-type": "application/json", ...answer.headers })
            .end(answer.body ?? (ok ? '{"ok":true}' : `{"ok":false,"status":${status}}`));
        };
        if (answer.delayMs) setTimeout(reply, answer.delayMs);
        else reply();
      });
    });
    this.#server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
  }

  /** `http://127.0.0.1:<port>/hook`: what FOLLOWUP_HOOK_URL is set to. */
  get url(): string {
    return this.#url;
  }

  /** Verified 2xx calls for a webhook-id it had already accepted (dropped, counted). */
  get duplicates(): number {
    return this.calls.filter((call) => call.duplicate).length;
  }

  /** Calls whose signature did not verify. */
  get unverified(): number {
    return this.calls.filter((call) => !call.verified).length;
  }

  /** Changes how later calls are answered. */
  respond(responder: HookResponder | HookAnswer): void {
    this.#responder = typeof responder === "function" ? responder : () => responder;
  }

  /** Every call for one webhook-id (`<tenant>:<leadId>:<step>`), in arrival order. */
  callsFor(webhookId: string): HookCall[] {
    return this.calls.filter((call) => call.webhookId === webhookId);
  }

  /** The delivered follow-ups of one lead, by step. */
  deliveredFor(leadId: string): HookCall[] {
    return [...this.delivered.values()]
      .filter((call) => call.body?.lead_id === leadId)
      .sort((a, b) => (a.body?.step ?? 0) - (b.body?.step ?? 0));
  }

  /** Waits until `count` follow-ups (distinct webhook-ids) were delivered in all. */
  async waitForDelivered(count: number, timeoutMs = 15_000): Promise<void> {
    await waitFor(() => this.delivered.size >= count, {
      description: `${count} follow-ups delivered to the hook (have ${this.delivered.size})`,
      timeoutMs,
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen({ host: "127.0.0.1", port: this.#port }, () => resolve());
    });
    const { port } = this.#server.address() as AddressInfo;
    this.#url = `http://127.0.0.1:${port}${this.#path}`;
  }

  /** Stops listening and drops open connections. Idempotent. */
  async close(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #record(headers: IncomingHttpHeaders, remotePort: number, raw: string): HookCall {
    const verification = verifyWebhook(this.#key, headers as never, raw);
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      body = undefined;
    }
    const payload = HookPayload.safeParse(body);
    return {
      receivedAt: Date.now(),
      webhookId: String(headers["webhook-id"] ?? ""),
      headers,
      remotePort,
      raw,
      body: payload.success ? payload.data : (body as HookPayload | undefined),
      verified: verification.ok,
      ...(verification.ok ? {} : { verifyFailure: verification.reason }),
      payloadValid: payload.success,
      duplicate: false,
      status: 0,
    };
  }
}

/** Starts a {@link HookRecorder} on a free port of 127.0.0.1. */
export async function startHookRecorder(options: HookRecorderOptions): Promise<HookRecorder> {
  const recorder = new HookRecorder(options);
  await recorder.listen();
  return recorder;
}
