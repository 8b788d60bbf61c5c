import type { PubAck } from "@nats-io/jetstream";
import { type MsgHdrs, type NatsConnection, headers as natsHeaders, nuid } from "@nats-io/transport-node";

/**
 * Atomic batch publish (ADR-50): up to 1000 messages on one stream (flag `allow_atomic`) stored
 * together or not at all, committed with a few fsyncs whatever the batch's size
 * (jetstream-facts 10). Every message but the last goes out without a reply; the last carries
 * `Nats-Batch-Commit` and its reply is the batch's ack. Headers are raw: `Nats-Msg-Id`,
 * `Nats-TTL` and `Nats-Expected-*` are set by hand by the caller.
 *
 * It takes the connection, not a JetStream client: nats.js's `js.startBatch()` answers a refused commit with a generic error; this reads the
 * server's answer itself, so a refusal is an AtomicBatchRejected with the server's code (a
 * repeated Nats-Msg-Id: 10201; a subject not empty: 10071) and the caller can fall back to
 * publishing the messages one by one. Anything else (a timeout) is thrown as it is: whether the
 * batch was stored is then unknown, as for any publish that timed out.
 */

/** nats-server's limit on the messages of one atomic batch. */
export const ATOMIC_BATCH_MAX = 1000;

export interface AtomicMessage {
  subject: string;
  data: Uint8Array;
  headers?: MsgHdrs;
}

export type AtomicBatchAck = PubAck & { batch: string; count: number };

/** The server refused the batch as a whole: none of its messages was stored. */
export class AtomicBatchRejected extends Error {
  constructor(
    /** nats-server's error code (`err_code`), e.g. 10201 for a repeated Nats-Msg-Id. */
    readonly code: number,
    message: string,
  ) {
    super(`atomic batch refused (${code}): ${message}`);
    this.name = "AtomicBatchRejected";
  }
}

const COMMIT_TIMEOUT_MS = 5_000;

/** Stores `messages` (1 to ATOMIC_BATCH_MAX, all on one stream) atomically. */
export async function publishAtomic(
  nc: NatsConnection,
  messages: readonly AtomicMessage[],
  options: { timeoutMs?: number } = {},
): Promise<AtomicBatchAck> {
  if (messages.length === 0 || messages.length > ATOMIC_BATCH_MAX) {
    throw new RangeError(`an atomic batch holds 1 to ${ATOMIC_BATCH_MAX} messages (got ${messages.length})`);
  }
  const id = nuid.next();
  const last = messages.length - 1;
  let reply: Uint8Array | undefined;
  for (const [i, m] of messages.entries()) {
    const h = natsHeaders();
    for (const [key, values] of m.headers ?? []) for (const v of values) h.append(key, v);
    h.set("Nats-Batch-Id", id);
    h.set("Nats-Batch-Sequence", String(i + 1));
    if (i < last) {
      nc.publish(m.subject, m.data, { headers: h });
      continue;
    }
    h.set("Nats-Batch-Commit", "1");
    const answer = await nc.request(m.subject, m.data, {
      headers: h,
      timeout: options.timeoutMs ?? COMMIT_TIMEOUT_MS,
    });
    reply = answer.data;
  }
  const ack = JSON.parse(new TextDecoder().decode(reply)) as Partial<AtomicBatchAck> & {
    error?: { code: number; err_code?: number; description?: string };
  };
  if (ack.error) {
    throw new AtomicBatchRejected(ack.error.err_code ?? ack.error.code, ack.error.description ?? "refused");
  }
  if (ack.count !== messages.length) {
    throw new AtomicBatchRejected(0, `${ack.count ?? 0} of ${messages.length} messages stored`);
  }
  return ack as AtomicBatchAck;
}

/** A refused batch, whatever the reason (or only those with one of `codes`). */
export function isBatchRejected(err: unknown, ...codes: number[]): err is AtomicBatchRejected {
  return err instanceof AtomicBatchRejected && (codes.length === 0 || codes.includes(err.code));
}
