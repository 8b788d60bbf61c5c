import { JetStreamApiError, type JetStreamClient, type PubAck, PubHeaders } from "@nats-io/jetstream";
import { Empty, type MsgHdrs, type NatsConnection, nuid, type Payload } from "@nats-io/transport-node";
import { PublishHeaders } from "./publish-headers.js";

/**
 * Atomic batch publish (ADR-50, nats-server 2.12+, a stream with `allow_atomic`): up to 1000
 * messages to one stream, stored all or none, committed with a few fsyncs whatever the batch's
 * size (at `sync_interval: always` a separate publish costs one fsync each). One message the
 * stream refuses (a subject that is not empty under expect-last-subject-sequence 0, a repeated
 * `Nats-Msg-Id`) refuses the whole batch: the caller keeps a per-message path for that case.
 */

const BATCH_ID = "Nats-Batch-Id";
const BATCH_SEQUENCE = "Nats-Batch-Sequence";
const BATCH_COMMIT = "Nats-Batch-Commit";

/** nats-server's limit on the messages of one atomic batch. */
export const ATOMIC_BATCH_MAX = 1000;

export interface AtomicMessage {
  subject: string;
  data: Payload;
  headers: MsgHdrs;
}

/** The acknowledgement of a committed batch: the stream, its last sequence, how many were stored. */
export type AtomicBatchAck = PubAck & { count: number };

/**
 * The stream refused the batch, so nothing of it was stored. `code` is the server's error code
 * when it gave one, that of the first refused message (ServerErrorCodes in jetstream-errors.ts:
 * StreamWrongLastSequence for a subject not empty, AtomicPublishDuplicateMessage,
 * AtomicPublishDisabled). A broker that does not answer (a timeout, no responders) is not a refusal: that error is thrown as it is, and the
 * batch may or may not have been stored.
 */
export class AtomicBatchRejectedError extends Error {
  readonly code: number | undefined;
  constructor(messages: number, cause: unknown) {
    const code = cause instanceof JetStreamApiError ? cause.code : undefined;
    super(
      `atomic batch of ${messages} messages rejected${cause instanceof Error ? `: ${cause.message}` : ""}`,
      { cause },
    );
    this.name = "AtomicBatchRejectedError";
    this.code = code;
  }
}

export function isAtomicBatchRejected(err: unknown): err is AtomicBatchRejectedError {
  return err instanceof AtomicBatchRejectedError;
}

/** The JetStream publish headers of one message, set by hand (a batch's messages take no publish options). */
export function publishHeaders(options: {
  /** `Nats-Msg-Id`: the stream's duplicate window drops a second message with it. */
  msgId?: string;
  /** `Nats-TTL`: whole seconds, or a Go duration; the stream needs `allow_msg_ttl`. */
  ttl?: string;
  /** `Nats-Expected-Last-Subject-Sequence`: 0 stores the message only on an empty subject. */
  expectLastSubjectSequence?: number;
}): MsgHdrs {
  // append, not set: on new headers they store the same, and set looks for the key twice more
  // (a lookup over every key each time; two headers per message of every batch). PublishHeaders:
  // nats.js's headers, built and encoded faster for these keys.
  const h = new PublishHeaders();
  if (options.msgId !== undefined) h.append(PubHeaders.MsgIdHdr, options.msgId);
  if (options.ttl !== undefined) h.append(PubHeaders.MessageTTL, options.ttl);
  if (options.expectLastSubjectSequence !== undefined) {
    h.append(PubHeaders.ExpectedLastSubjectSequenceHdr, String(options.expectLastSubjectSequence));
  }
  return h;
}

/**
 * The connection under a JetStream client. nats.js's own batch publisher uses the same field; a
 * client without it (a nats.js that renamed it) fails loudly here rather than batching wrongly.
 */
function connectionOf(js: JetStreamClient): NatsConnection {
  const nc = (js as unknown as { nc?: NatsConnection }).nc;
  if (nc === undefined || typeof nc.publish !== "function") {
    throw new Error("publishAtomic needs the JetStream client's connection (js.nc)");
  }
  return nc;
}

/**
 * An atomic batch whose messages but the last have been sent (stageAtomic): the server holds
 * them, and stores none of them until `commit()`. A batch that is neither committed nor
 * abandoned is dropped by the server after 10 s, and until then it counts against the stream's
 * 50 batches in flight.
 */
export interface StagedBatch {
  /** Sends the last message with the commit headers: as publishAtomic from there on. */
  commit(): Promise<AtomicBatchAck>;
  /**
   * Drops the batch now, storing nothing: a commit with a gap in the batch's sequence, which
   * the server refuses and forgets (ADR-50: a gap rejects the batch). Resolves once the server
   * has answered, or quietly when it does not (it drops the batch after 10 s by itself).
   */
  abandon(): Promise<void>;
}

/**
 * Publishes `messages` (1 to ATOMIC_BATCH_MAX, all to one stream) as one atomic batch and
 * resolves with the commit's acknowledgement, which nats-server sends after the batch is synced.
 * A stream's refusal throws AtomicBatchRejectedError; anything else (a timeout) is thrown as is.
 * The messages' headers are the batch's: it adds `Nats-Batch-*` to them, so build them for this
 * one call (a copy per message cost the scheduler more than a percent of its time).
 */
export async function publishAtomic(
  js: JetStreamClient,
  messages: readonly AtomicMessage[],
  options: { timeoutMs?: number } = {},
): Promise<AtomicBatchAck> {
  return await stageAtomic(js, messages, options).commit();
}

/**
 * Sends every message of an atomic batch but the last, and leaves the commit to the caller: a
 * caller that must see another write stored first (the scheduler's plans before their timers)
 * sends this batch meanwhile, so that only the commit waits. Checks as publishAtomic does.
 *
 * Every message but the last is a plain publish, the first included: ADR-50 lets a client start
 * a batch with a request, but the server takes one without a reply as well (checked on 2.15.1),
 * and waiting for that reply cost each batch a round trip before its other messages were sent.
 * What the first message would have told (a stream without allow_atomic, a batch the server
 * does not know) comes back on the commit instead, and nothing of the batch is stored. The
 * commit is an ordinary acknowledged publish with the batch's commit headers, so that a refusal
 * comes back as a JetStreamApiError with the server's code (nats.js's own `commit()` reports
 * every refusal as one generic Error). The batch headers are appended, not set: a message's
 * headers are new, and `set` scans every key first. A batch of one is a plain publish.
 */
export function stageAtomic(
  js: JetStreamClient,
  messages: readonly AtomicMessage[],
  options: { timeoutMs?: number } = {},
): StagedBatch {
  const first = messages[0];
  const last = messages[messages.length - 1];
  if (first === undefined || last === undefined || messages.length > ATOMIC_BATCH_MAX) {
    throw new RangeError(`an atomic batch holds 1 to ${ATOMIC_BATCH_MAX} messages, not ${messages.length}`);
  }
  const timeout = options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {};
  // A batch of one is a plain publish: no batch id, nothing sent before the commit.
  const id = messages.length > 1 ? nuid.next() : undefined;
  if (id !== undefined) {
    const nc = connectionOf(js);
    for (let i = 0; i < messages.length - 1; i++) {
      const m = messages[i]!;
      m.headers.append(BATCH_ID, id);
      m.headers.append(BATCH_SEQUENCE, String(i + 1));
      nc.publish(m.subject, m.data, { headers: m.headers });
    }
  }
  let settled = false;
  const settle = () => {
    if (settled) throw new Error(`atomic batch ${id ?? last.subject} was committed or abandoned already`);
    settled = true;
  };
  return {
    async commit() {
      settle();
      if (id !== undefined) {
        last.headers.append(BATCH_ID, id);
        last.headers.append(BATCH_SEQUENCE, String(messages.length));
        last.headers.append(BATCH_COMMIT, "1");
      }
      try {
        const ack = await js.publish(last.subject, last.data, { headers: last.headers, ...timeout });
        if (id === undefined) return { ...ack, count: 1 };
        // The server answers a commit with the count it stored; a batch it abandoned (a message
        // lost on the way, too many batches in flight) is not stored at all.
        const { count } = ack as AtomicBatchAck;
        if (count !== messages.length) {
          throw new AtomicBatchRejectedError(
            messages.length,
            new Error(`the commit stored ${String(count)} of ${messages.length} messages`),
          );
        }
        return ack as AtomicBatchAck;
      } catch (err) {
        if (err instanceof JetStreamApiError) throw new AtomicBatchRejectedError(messages.length, err);
        throw err;
      }
    },
    async abandon() {
      settle();
      if (id === undefined) return; // nothing was sent
      const gap = new PublishHeaders();
      gap.append(BATCH_ID, id);
      // One past the next sequence: the server sees a gap and drops the batch.
      gap.append(BATCH_SEQUENCE, String(messages.length + 1));
      gap.append(BATCH_COMMIT, "1");
      try {
        await js.publish(last.subject, Empty, { headers: gap, ...timeout });
      } catch {
        // Refused as it should be (10176, incomplete), or no answer: either way nothing is stored.
        return;
      }
      throw new Error(`abandoning atomic batch ${id}: the server stored a commit with a gap`);
    },
  };
}
