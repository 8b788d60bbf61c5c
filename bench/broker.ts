import { type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";

/**
 * A fresh nats-server per measurement (its own port and store, from @followup/nats-harness),
 * with the bench's own connection to it; stopped and deleted when the measurement ends, so no
 * measurement inherits another's messages or disk.
 */
/**
 * How long the bench waits for one publish's acknowledgement. With fsync before every ack on a
 * busy 2-core machine an ack can take seconds; a measurement waits for it (bounded) rather than
 * failing on the client's 5 s default.
 */
export const PUBLISH_TIMEOUT_MS = 60_000;

export interface Broker {
  server: NatsServer;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  syncAlways: boolean;
}

export async function withBroker<T>(
  syncAlways: boolean,
  measure: (broker: Broker) => Promise<T>,
  /** Appended to the server's config (a probe's `prof_port`, say). */
  extraConfig = "",
): Promise<T> {
  const server = await startNatsServer({ syncAlways, name: "bench", extraConfig });
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ servers: server.url, name: "bench", timeout: 10_000 });
    const js = jetstream(nc, { timeout: PUBLISH_TIMEOUT_MS });
    const broker: Broker = { server, nc, js, jsm: await jetstreamManager(nc), syncAlways };
    return await measure(broker);
  } finally {
    await nc?.close().catch(() => {});
    await server.cleanup();
  }
}

/** Waits until `stream` holds `count` messages; resolves with its state then. */
export async function waitForStreamMessages(
  jsm: JetStreamManager,
  stream: string,
  count: number,
  timeoutMs: number,
  intervalMs = 100,
): Promise<{ messages: number; bytes: number; first_ts: string; last_ts: string }> {
  let seen = 0;
  try {
    return await waitFor(
      async () => {
        const { state } = await jsm.streams.info(stream);
        seen = state.messages;
        return state.messages >= count ? state : undefined;
      },
      { description: `${stream} to hold ${count} messages`, timeoutMs, intervalMs },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; it held ${seen}`);
  }
}

/** An RFC 3339 timestamp with up to nanoseconds, as fractional epoch milliseconds. */
export function serverTimeMs(ts: string): number {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!match) return Date.parse(ts);
  const fraction = (match[2] ?? "").padEnd(9, "0");
  return Date.parse(`${match[1]}${match[3]}`) + Number(fraction) / 1e6;
}
