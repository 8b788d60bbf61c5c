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

function isInvalid(err: unknown): err is InvalidEvent | ContractError | SubjectError {
  return err instanceof InvalidEvent || err instanceof ContractError || err instanceof SubjectError;
}

/** From this delivery on, a failing message is logged at error: an operator should look. */
const PERSISTENT_FAILURE_DELIVERIES = 5;

export async function startConsumerLoop(options: ConsumerLoopOptions): Promise<ConsumerLoop> {
  const { js, spec, name, concurrency, handle } = options;
  const logger = options.logger.child({ consumer: spec.durable });
  const consumer = await js.consumers.get(spec.stream, spec.durable);
  const messages: ConsumerMessages = await consumer.consume({ max_messages: concurrency });
  // A message is kept alive while its handler runs, so a slow KV call never lets the ack wait lapse.
  const keepAliveMs = Math.max(1_000, Math.floor(spec.ackWaitMs / 3));
  const inFlight = new Set<Promise<void>>();
  let stopping = false;

  const settleFailure = (msg: JsMsg, err: unknown) => {
    if (isInvalid(err)) {
      const reason = err.message.slice(0, 500);
      logger.error({ subject: msg.subject, seq: msg.seq, reason }, "invalid_event_terminated");
      options.onInvalid(name);
      msg.term(reason);
      return;
    }
    const deliveries = msg.info.deliveryCount;
    const delayMs = backoffDelayMs(deliveries, HANDLER_RETRY);
    const context = {
      subject: msg.subject,
      seq: msg.seq,
      deliveries,
      retry_in_ms: delayMs,
      err: err instanceof Error ? err.message : String(err),
    };
    if (deliveries >= PERSISTENT_FAILURE_DELIVERIES) logger.error(context, "handler_failing_retrying");
    else logger.warn(context, "handler_failed_retrying");
    options.onRetry(name);
    msg.nak(delayMs);
  };

  const run = async (msg: JsMsg) => {
    const keepAlive = setInterval(() => msg.working(), keepAliveMs);
    keepAlive.unref();
    try {
      await retry(() => handle(msg), HANDLER_RETRY, {
        retryable: (err) => !isInvalid(err) && !stopping,
        onRetry: (err, attempt, delayMs) =>
          logger.debug(
            {
              subject: msg.subject,
              seq: msg.seq,
              attempt,
              retry_in_ms: delayMs,
              err: (err as Error).message,
            },
            "handler_failed_retrying_here",
          ),
      });
    } catch (err) {
      settleFailure(msg, err);
    } finally {
      clearInterval(keepAlive);
    }
  };

  const loop = (async () => {
    for await (const msg of messages) {
      if (stopping) {
        // Pulled but not started: hand it straight back for another copy.
        msg.nak();
        continue;
      }
      while (inFlight.size >= concurrency) await Promise.race(inFlight);
      const task: Promise<void> = run(msg).finally(() => inFlight.delete(task));
      inFlight.add(task);
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

  logger.info({ stream: spec.stream, concurrency }, "consumer_started");

  return {
    get inFlight() {
      return inFlight.size;
    },
    async stop(graceMs: number) {
      if (stopping) return;
      stopping = true;
      void messages.close();
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
