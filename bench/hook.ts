import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { waitFor } from "@followup/nats-harness";

/**
 * The local HTTP hook every system delivers to: the engine's dispatcher, the BullMQ worker and
 * the native-schedule consumer all POST a JSON body carrying `due_at` and sign it the same way.
 * It records when each follow-up arrived, so lateness is measured in one place, on one clock,
 * for every system. Signatures are not verified: the receiver's cost is the same for all.
 */
export interface Delivery {
  /** `webhook-id`: the follow-up's idempotency key. */
  key: string;
  dueAtMs: number;
  arrivedAtMs: number;
}

export interface FollowupHook {
  readonly url: string;
  /** First arrival of each follow-up (a repeated webhook-id counts as a duplicate). */
  readonly deliveries: readonly Delivery[];
  readonly duplicates: number;
  /** When the last of `deliveries` arrived (ms since the epoch); 0 before the first. */
  readonly lastArrivalMs: number;
  /** Deliveries whose body had no readable due_at. */
  readonly unreadable: number;
  /** Resolves once `count` distinct follow-ups have arrived; rejects naming how many did. */
  waitForDeliveries(count: number, timeoutMs: number): Promise<void>;
  /** Forgets what arrived, for the next measurement. */
  reset(): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;

export async function startFollowupHook(): Promise<FollowupHook> {
  let deliveries: Delivery[] = [];
  let seen = new Set<string>();
  let duplicates = 0;
  let unreadable = 0;
  let lastArrivalMs = 0;

  const server: Server = createServer((req, res) => {
    readBody(req).then(
      (body) => {
        const arrivedAtMs = Date.now();
        const key = String(req.headers["webhook-id"] ?? "");
        let dueAtMs = Number.NaN;
        try {
          dueAtMs = Date.parse((JSON.parse(body) as { due_at?: string }).due_at ?? "");
        } catch {}
        if (!key || Number.isNaN(dueAtMs)) unreadable++;
        else if (seen.has(key)) duplicates++;
        else {
          seen.add(key);
          deliveries.push({ key, dueAtMs, arrivedAtMs });
          lastArrivalMs = Math.max(lastArrivalMs, arrivedAtMs);
        }
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"ok":true,"message":"Follow-up hook received"}');
      },
      () => {
        res.writeHead(413);
        res.end();
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/ops/followup-hook`,
    get deliveries() {
      return deliveries;
    },
    get duplicates() {
      return duplicates;
    },
    get lastArrivalMs() {
      return lastArrivalMs;
    },
    get unreadable() {
      return unreadable;
    },
    async waitForDeliveries(count, timeoutMs) {
      try {
        await waitFor(() => deliveries.length >= count, {
          description: `${count} follow-ups at the hook`,
          timeoutMs,
          intervalMs: 20,
        });
      } catch (err) {
        throw new Error(`${(err as Error).message}; ${deliveries.length} had arrived`);
      }
    },
    reset() {
      deliveries = [];
      seen = new Set();
      duplicates = 0;
      unreadable = 0;
      lastArrivalMs = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.destroy();
        reject(new Error("body too large"));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
