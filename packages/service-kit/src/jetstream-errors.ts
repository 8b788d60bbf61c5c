import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { JetStreamStatusError, jserrors } from "@nats-io/jetstream/internal";
import { RequestError, TimeoutError } from "@nats-io/transport-node";

/**
 * What a JetStream error means, asked in one place. Server error codes are compared by their
 * names in nats.js's own table (`JetStreamApiCodes`), never retyped or matched by their text;
 * the codes the engine needs that the table lacks are named below, from nats-server's
 * errors.json.
 */

export const ServerErrorCodes = {
  ...JetStreamApiCodes,
  /** JSSequenceNotFoundErrF: a delete of a sequence already deleted, below the stream's last. */
  SequenceNotFound: 10043,
  /** JSStreamMsgDeleteFailedF: a delete that failed, as of the stream's last or a later sequence. */
  StreamMsgDeleteFailed: 10057,
  /** JSAtomicPublishDisabledErr: an atomic batch sent to a stream without `allow_atomic`. */
  AtomicPublishDisabled: 10174,
  /** JSAtomicPublishIncompleteBatchErr: a batch with a gap, or one the server no longer holds. */
  AtomicPublishIncomplete: 10176,
  /** JSAtomicPublishContainsDuplicateMessageErr: an atomic batch repeating a stored `Nats-Msg-Id`. */
  AtomicPublishDuplicateMessage: 10201,
} as const;

/**
 * The status of a direct get that found nothing (nats.js's `JetStreamStatus.isNoResults()` and
 * `isMessageNotFound()` both test it); its `JetStreamStatusError` keeps the code but no name.
 */
const NOT_FOUND_STATUS = 404;

/** A JetStream API error with one of these codes. */
export function hasApiCode(err: unknown, ...codes: number[]): err is JetStreamApiError {
  return err instanceof JetStreamApiError && codes.includes(err.code);
}

/**
 * A compare-and-set that lost a race: a KV create of a key that exists, a KV update from a stale
 * revision, a publish whose expected last (subject) sequence no longer holds.
 */
export function isWrongLastSequence(err: unknown): err is JetStreamApiError {
  return hasApiCode(
    err,
    JetStreamApiCodes.StreamWrongLastSequence,
    JetStreamApiCodes.StreamWrongLastSequenceUnknown,
  );
}

export function isStreamNotFound(err: unknown): err is JetStreamApiError {
  return hasApiCode(err, JetStreamApiCodes.StreamNotFound);
}

export function isConsumerNotFound(err: unknown): err is JetStreamApiError {
  return hasApiCode(err, JetStreamApiCodes.ConsumerNotFound);
}

/** A message delete (or get) of a sequence that holds nothing (any more). */
export function isMessageGone(err: unknown): err is JetStreamApiError {
  return hasApiCode(
    err,
    JetStreamApiCodes.NoMessageFound,
    ServerErrorCodes.SequenceNotFound,
    ServerErrorCodes.StreamMsgDeleteFailed,
  );
}

/**
 * A read that found no message: a direct get (or batch) answering "no results" or "message not
 * found", or a stream API get of a missing sequence. An empty answer, not a failure.
 */
export function isNoMessages(err: unknown): boolean {
  return (
    (err instanceof JetStreamStatusError && err.code === NOT_FOUND_STATUS) ||
    hasApiCode(err, JetStreamApiCodes.NoMessageFound)
  );
}

/**
 * JetStream did not answer (in time, or at all yet: a server still starting, a cluster still
 * electing leaders): the same request may well succeed later.
 */
export function isNotAnswering(err: unknown): boolean {
  return (
    err instanceof TimeoutError ||
    (err instanceof RequestError && err.isNoResponders()) ||
    // What jetstreamManager() throws while the server's JetStream does not answer yet.
    err instanceof jserrors.JetStreamNotEnabled
  );
}
