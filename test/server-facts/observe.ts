// Ways for the fact tests to watch what the server stores, without sleeping and hoping.
import { setTimeout as pause } from "node:timers/promises";
import { jetstream } from "@nats-io/jetstream";
import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node";

/** A message as stored in a stream, as an ordered consumer delivered it. */
export interface Stored {
  subject: string;
  seq: number;
  body: string;
  headers: Record<string, string>;
  /** Server's store timestamp, epoch ms. */
  storedAtMs: number;
}

/** Everything an ordered consumer on `stream` delivers, appended to `seen` as it arrives. */
export async function watchStream(
  nc: NatsConnection,
  stream: string,
): Promise<{ seen: Stored[]; stop: () => Promise<void> }> {
  const consumer = await jetstream(nc).consumers.get(stream);
  const messages = await consumer.consume();
  const seen: Stored[] = [];
  const done = (async () => {
    for await (const m of messages) {
      seen.push({
        subject: m.subject,
        seq: m.seq,
        body: m.string(),
        headers: headerRecord(m.headers),
        storedAtMs: Math.floor(m.info.timestampNanos / 1e6),
      });
    }
  })();
  return {
    seen,
    stop: async () => {
      await messages.close();
      await done;
    },
  };
}

export function headerRecord(headers: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, values] of headers ?? []) out[key] = values.join(",");
  return out;
}

/** Whether a stored message is a subject delete marker (what an expired `Nats-TTL` leaves behind). */
export function isMarker(m: { headers: Record<string, string> }): boolean {
  return m.headers["Nats-Marker-Reason"] !== undefined;
}

/** Milliseconds in a Go duration such as "1m0s", "60s", "1h2m3.5s" (what the server writes). */
export function goDurationMs(text: string): number {
  const units: Record<string, number> = {
    h: 3_600_000,
    m: 60_000,
    s: 1_000,
    ms: 1,
    us: 0.001,
    µs: 0.001,
    ns: 1e-6,
  };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) {
    throw new Error(`not a Go duration: ${JSON.stringify(text)}`);
  }
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * units[unit!]!, 0);
}

/**
 * A bounded negative check: polls `probe` every 100 ms for `forMs` and throws `description` the
 * first time it is falsy. It passes only by the window running out, which is its point.
 */
export async function holdsFor(
  probe: () => boolean | Promise<boolean>,
  options: { forMs: number; description: string },
): Promise<void> {
  const end = Date.now() + options.forMs;
  for (;;) {
    if (!(await probe())) throw new Error(options.description);
    if (Date.now() >= end) return;
    await pause(Math.min(100, Math.max(end - Date.now(), 0)));
  }
}

/**
 * Waits until the wall clock reads `epochMs`. Only for waiting out time that must pass while
 * there is nothing to poll (the server is down); everything else uses waitFor.
 */
export async function untilWallClock(epochMs: number): Promise<void> {
  const left = epochMs - Date.now();
  if (left > 0) await pause(left);
}
