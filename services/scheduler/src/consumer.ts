import type { ConsumerSpec } from "@followup/contracts";
import { ContractError, SubjectError } from "@followup/contracts";
import { backoffDelayMs, pause, retry } from "@followup/service-kit";
import type { ConsumerMessages, JetStreamClient, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { HANDLER_RETRY } from "./schedule.js";

/**
 * A durable pull consumer worked with bounded concurrency: up to `concurrency` messages are
 * handled at once, so one slow lead (a held marker, a slow KV write) never holds up the others.
 *
 * A handler settles its message (ack, or nak with a delay). What it throws is settled here:
 * an InvalidEvent (or a contract/subject error) is terminated, logged at error and counted, and
 * anything else is taken for a broker failure and handed back with an exponential back-off.
 * Nothing is dropped.
 */

/** A message that breaks its contract: terminated, never retried. */
export class InvalidEvent extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidEvent";
  }
}

export interface ConsumerLoopOptions {
  js: JetStreamClient;
  spec: ConsumerSpec;
  /** The short name used in logs and metric labels: scored, outcomes, markers. */
  name: string;
  concurrency: number;
  logger: Logger;
  handle: (msg: JsMsg) => Promise<void>;
  onInvalid: (name: string) => void;
  onRetry: (name: string) => void;
}

export interface ConsumerLoop {
  readonly inFlight: number;
  /** Stops pulling, hands back what was pulled but not started, waits (bounded) for handlers. */
  stop(graceMs: number): Promise<void>;
}

/**
 * A broker failure (a KV read or a publish that timed out) is first retried here, on the message
 * this process holds, before the message is handed back with a nak. Every handler is idempotent,
 * so running it again is what a redelivery would do, minus the round trip through the server,
 * and it does not depend on the nak arriving: a nak sent while nats-server was down is sent on
 * reconnect, and in the fault suite's outage scenario (test/faults/nats-outage.test.ts, larger
 * counts) markers whose nak crossed the server's restart were not redelivered and their
 * follow-ups never became due (33 of 1200, in about one run in five). The keep-alive
 * (`working()`) holds the message meanwhile; a 10 s outage is ridden out within the attempts
 * of HANDLER_RETRY (6, 0.5-8 s apart).
 */

export function isInvalidEvent(err: unknown): err is InvalidEvent | ContractError | SubjectError {
  return err instanceof InvalidEvent || err instanceof ContractError || err instanceof SubjectError;
}

/** From this delivery on, a failing message is logged at error: an operator should look. */
const PERSISTENT_FAILURE_DELIVERIES = 5;

export function startConsumerLoop(options: ConsumerLoopOptions): Promise<ConsumerLoop> {
  const { handle, concurrency, ...rest } = options;
  return startBatchConsumerLoop({
    ...rest,
    batchSize: 1,
    batches: concurrency,
    // An invalid event thrown by the handler is about the batch's one message (run() terminates it).
    handle: ([msg]) => (msg ? handle(msg) : Promise.resolve()),
  });
}

export interface BatchConsumerLoopOptions extends Omit<ConsumerLoopOptions, "handle" | "concurrency"> {
  /** Most messages handed to one call of `handle`. */
  batchSize: number;
  /** Batches handled at once. */
  batches: number;
  /**
   * Settles every message it is given: acks it, or hands an invalid one to `invalid` (which
   * terminates it, logs and counts it, and leaves it out of a retry of the batch). What it
   * throws is taken for a broker failure: the batch's other messages are handled again here,
   * then handed back with a back-off, none of them acked.
   */
  handle: (msgs: JsMsg[], invalid: (msg: JsMsg, err: Error) => void) => Promise<void>;
}

/**
 * A durable pull consumer whose messages are handled in batches: a message that arrives while
 * every batch slot is busy waits, and the next batch takes all that waited (up to `batchSize`).
 * So a lone message is handled at once, on its own, and under load the batches fill up: the
 * cost of a batch (its fsyncs) is shared by more messages exactly when there are more.
 */
export async function startBatchConsumerLoop(options: BatchConsumerLoopOptions): Promise<ConsumerLoop> {
  const { js, spec, name, batchSize, batches, handle } = options;
  const logger = options.logger.child({ consumer: spec.durable });
  const consumer = await js.consumers.get(spec.stream, spec.durable);
  const messages: ConsumerMessages = await consumer.consume({ max_messages: batchSize * batches });
  // A message is kept alive while its handler runs, so a slow KV call never lets the ack wait lapse.
  const keepAliveMs = Math.max(1_000, Math.floor(spec.ackWaitMs / 3));
  const inFlight = new Set<Promise<void>>();
  const waiting: JsMsg[] = [];
  let stopping = false;

  const terminate = (msg: JsMsg, err: Error) => {
    const reason = err.message.slice(0, 500);
    logger.error({ subject: msg.subject, seq: msg.seq, reason }, "invalid_event_terminated");
    options.onInvalid(name);
    msg.term(reason);
  };

  const handBack = (msgs: JsMsg[], err: unknown) => {
    const first = msgs[0];
    if (first === undefined) return;
    const deliveries = Math.max(...msgs.map((m) => m.info.deliveryCount));
    const context = {
      subject: first.subject,
      seq: first.seq,
      ...(msgs.length > 1 ? { messages: msgs.length } : {}),
      deliveries,
      retry_in_ms: backoffDelayMs(deliveries, HANDLER_RETRY),
      err: err instanceof Error ? err.message : String(err),
    };
    if (deliveries >= PERSISTENT_FAILURE_DELIVERIES) logger.error(context, "handler_failing_retrying");
    else logger.warn(context, "handler_failed_retrying");
    for (const msg of msgs) {
      options.onRetry(name);
      msg.nak(backoffDelayMs(msg.info.deliveryCount, HANDLER_RETRY));
    }
  };

  const run = async (batch: JsMsg[]) => {
    const keepAlive = setInterval(() => {
      for (const msg of batch) msg.working();
    }, keepAliveMs);
    keepAlive.unref();
    const terminated = new Set<JsMsg>();
    const invalid = (msg: JsMsg, err: Error) => {
      terminated.add(msg);
      terminate(msg, err);
    };
    const open = () => batch.filter((msg) => !terminated.has(msg));
    try {
      await retry(() => handle(open(), invalid), HANDLER_RETRY, {
        retryable: (err) => !isInvalidEvent(err) && !stopping,
        onRetry: (err, attempt, delayMs) =>
          logger.debug(
            {
              subject: batch[0]?.subject,
              seq: batch[0]?.seq,
              ...(batch.length > 1 ? { messages: batch.length } : {}),
              attempt,
              retry_in_ms: delayMs,
              err: (err as Error).message,
            },
            "handler_failed_retrying_here",
          ),
      });
    } catch (err) {
      const left = open();
      if (isInvalidEvent(err) && left.length === 1) invalid(left[0]!, err);
      else handBack(left, err);
    } finally {
      clearInterval(keepAlive);
    }
  };

  const dispatch = () => {
    while (!stopping && waiting.length > 0 && inFlight.size < batches) {
      // With a batch in flight the next one waits until it is full: a slot that took whatever
      // had just arrived would commit small batches. A lone message (nothing in flight) goes at once.
      if (inFlight.size > 0 && waiting.length < batchSize) return;
      const task: Promise<void> = run(waiting.splice(0, batchSize)).finally(() => {
        inFlight.delete(task);
        dispatch();
      });
      inFlight.add(task);
    }
  };

  const loop = (async () => {
    for await (const msg of messages) {
      if (stopping) {
        // Pulled but not started: hand it straight back for another copy.
        msg.nak();
        continue;
      }
      waiting.push(msg);
      dispatch();
      while (waiting.length >= batchSize && inFlight.size >= batches) await Promise.race(inFlight);
    }
  })().catch((err: unknown) => {
    logger.error({ err: err instanceof Error ? err.message : String(err) }, "consumer_stopped_with_error");
  });

  void (async () => {
    for await (const status of messages.status()) {
      if (status.type === "consumer_not_found" || status.type === "consumer_deleted") {
        logger.warn({ status: status.type }, "consumer_missing");
      } else if (status.type === "heartbeats_missed") {
        logger.debug({ status: status.type, count: status.count }, "consumer_heartbeats_missed");
      }
    }
  })().catch(() => {});

  logger.info(
    {
      stream: spec.stream,
      ...(batchSize > 1 ? { batch_size: batchSize, batches } : { concurrency: batches }),
    },
    "consumer_started",
  );

  return {
    get inFlight() {
      return inFlight.size;
    },
    async stop(graceMs: number) {
      if (stopping) return;
      stopping = true;
      void messages.close();
      for (const msg of waiting.splice(0)) msg.nak();
      // Once the loop has ended no handler starts any more, so what is in flight then is all there is.
      const finished = loop.then(() => Promise.all([...inFlight])).then(() => true);
      const inTime = await Promise.race([finished, pause(graceMs).then(() => false)]);
      if (!inTime) {
        // Left unacked: the server redelivers them after the ack wait, to this or another copy.
        logger.warn({ in_flight: inFlight.size, grace_ms: graceMs }, "consumer_stop_grace_exceeded");
      }
      logger.info("consumer_stopped");
    },
  };
}
