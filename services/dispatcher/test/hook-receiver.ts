import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { verifyWebhook } from "@followup/service-kit";

/** What the receiver saw of one call. */
export interface HookCall {
  /** Milliseconds since the epoch when the request's body was complete. */
  at: number;
  id: string;
  headers: IncomingHttpHeaders;
  /** The caller's port: the same across calls when the connection is kept alive. */
  remotePort: number;
  raw: string;
  body: Record<string, unknown>;
  verified: boolean;
  /** The status it answered (or will answer, for a slow reply). */
  status: number;
  /** A 2xx for an id it had already accepted: dropped, as a real receiver would. */
  duplicate: boolean;
}

export interface HookReply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Answer after this long. */
  delayMs?: number;
  /** Never answer (until the receiver closes). */
  hang?: boolean;
}

export type Responder = (call: HookCall, index: number) => HookReply;

export interface HookReceiver {
  url: string;
  readonly calls: HookCall[];
  /** Accepted follow-ups by webhook-id: the first call answered 2xx. */
  readonly accepted: Map<string, HookCall>;
  readonly duplicates: number;
  respond(responder: Responder): void;
  callsFor(id: string): HookCall[];
  close(): Promise<void>;
}

/**
 * A real HTTP hook receiver on 127.0.0.1 that verifies Standard Webhooks signatures, records
 * every call, and accepts each webhook-id once (later 2xx calls for it are counted duplicates).
 */
export async function startHookReceiver(
  secret: Buffer,
  options: { respond?: Responder; port?: number } = {},
): Promise<HookReceiver> {
  let respond: Responder = options.respond ?? (() => ({ status: 200 }));
  const calls: HookCall[] = [];
  const accepted = new Map<string, HookCall>();
  let duplicates = 0;
  const hanging = new Set<() => void>();

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const verification = verifyWebhook(secret, req.headers as never, raw);
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw);
      } catch {}
      const id = String(req.headers["webhook-id"] ?? "");
      const call: HookCall = {
        at: Date.now(),
        id,
        headers: req.headers,
        remotePort: req.socket.remotePort ?? 0,
        raw,
        body,
        verified: verification.ok,
        status: 0,
        duplicate: false,
      };
      const reply: HookReply = verification.ok ? respond(call, calls.length) : { status: 401 };
      call.status = reply.status;
      if (reply.status >= 200 && reply.status < 300) {
        if (accepted.has(id)) {
          call.duplicate = true;
          duplicates++;
        } else {
          accepted.set(id, call);
        }
      }
      calls.push(call);
      const send = () => {
        if (res.writableEnded || res.destroyed) return;
        res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers });
        res.end(reply.body ?? JSON.stringify({ ok: reply.status < 300 }));
      };
      if (reply.hang) {
        hanging.add(() => res.destroy());
        return;
      }
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/ops/followup-hook`,
    calls,
    accepted,
    get duplicates() {
      return duplicates;
    },
    respond(next) {
      respond = next;
    },
    callsFor: (id) => calls.filter((call) => call.id === id),
    async close() {
      for (const end of hanging) end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
