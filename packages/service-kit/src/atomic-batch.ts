import { JetStreamApiError, type JetStreamClient, type PubAck, PubHeaders } from "@nats-io/jetstream";
import { headers, type MsgHdrs, type Payload } from "@nats-io/transport-node";

/**
 * Atomic batch publish (ADR-50, nats-server 2.12+, a stream with `allow_atomic`): up to 1000
 * messages to one stream, stored all or none, committed with a few fsyncs whatever the batch's
 * size (at `sync_interval: always` a separate publish costs one fsync each). One message the
 * stream refuses (a subject that is not empty under expect-last-subject-sequence 0, a repeated
 * `Nats-Msg-Id`) refuses the whole batch: the caller keeps a per-message path for that case.
 */

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
  // (a lookup over every key each time; two headers per message of every batch).
  const h = headers();
  if (options.msgId !== undefined) h.append(PubHeaders.MsgIdHdr, options.msgId);
  if (options.ttl !== undefined) h.append(PubHeaders.MessageTTL, options.ttl);
  if (options.expectLastSubjectSequence !== undefined) {
    h.append(PubHeaders.ExpectedLastSubjectSequenceHdr, String(options.expectLastSubjectSequence));
  }
  return h;
}

/**
 * Publishes `messages` (1 to ATOMIC_BATCH_MAX, all to one stream) as one atomic batch and
 * resolves with the commit's acknowledgement, which nats-server sends after the batch is synced.
 * A stream's refusal throws AtomicBatchRejectedError; anything else (a timeout) is thrown as is.
 * The messages' headers are the batch's: it adds `Nats-Batch-*` to them, so build them for this
 * one call (a copy per message cost the scheduler more than a percent of its time).
 *
 * `js.startBatch()` sends the first message as a request and the middle ones as plain publishes;
 * the commit is sent here as an ordinary acknowledged publish with the batch's commit headers,
 * so that a refusal comes back as a JetStreamApiError with the server's code (the library's own
 * `commit()` reports every refusal as one generic Error). A batch of one is a plain publish.
 */
export async function publishAtomic(
  js: JetStreamClient,
  messages: readonly AtomicMessage[],
  options: { timeoutMs?: number } = {},
): Promise<AtomicBatchAck> {
  const first = messages[0];
  const last = messages[messages.length - 1];
  if (first === undefined || last === undefined || messages.length > ATOMIC_BATCH_MAX) {
    throw new RangeError(`an atomic batch holds 1 to ${ATOMIC_BATCH_MAX} messages, not ${messages.length}`);
  }
  const timeout = options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {};
  try {
    if (messages.length === 1) {
      const ack = await js.publish(first.subject, first.data, {
        headers: first.headers,
        ...timeout,
      });
      return { ...ack, count: 1 };
    }
    const batch = await js.startBatch(first.subject, first.data, {
      headers: first.headers,
      ...timeout,
    });
    for (let i = 1; i < messages.length - 1; i++) {
      const m = messages[i]!;
      batch.add(m.subject, m.data, { headers: m.headers });
    }
    const commit = last.headers;
    commit.set("Nats-Batch-Id", batch.id);
    commit.set("Nats-Batch-Sequence", String(messages.length));
    commit.set("Nats-Batch-Commit", "1");
    const ack = (await js.publish(last.subject, last.data, {
      headers: commit,
      ...timeout,
    })) as AtomicBatchAck;
    // The server answers a commit with the count it stored; a batch it abandoned (a message
    // lost on the way, too many batches in flight) is not stored at all.
    if (ack.count !== messages.length) {
      throw new AtomicBatchRejectedError(
        messages.length,
        new Error(`the commit stored ${String(ack.count)} of ${messages.length} messages`),
      );
    }
    return ack;
  } catch (err) {
    if (err instanceof JetStreamApiError) throw new AtomicBatchRejectedError(messages.length, err);
    throw err;
  }
}
