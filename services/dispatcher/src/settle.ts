import {
  deadLetterMsgId,
  encodeEvent,
  type FollowupDueData,
  nextAllowedTime,
  resultMsgId,
  strategyName,
  subjects,
} from "@followup/contracts";
import { type Backoff, retry } from "@followup/service-kit";
import type { JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { ZodError } from "zod";
import type { ChannelAnswer } from "./channels/channel.js";
import { attemptResult, describeError } from "./classify.js";
import type { DispatcherMetrics } from "./metrics.js";
import type { ResultPublisher } from "./result-batches.js";
import { deadLetterEvent, resultEvent } from "./results.js";
import { type DeliveryBackoff, nextAttemptDelayMs } from "./retry-after.js";

/** A due follow-up (or a timer's marker) the dispatcher holds until it settles it exactly once. */
export interface HeldDue {
  readonly msg: JsMsg;
  /** True once acked, naked or terminated (also when a shutdown handed it back). */
  readonly settled: boolean;
  /**
   * Acknowledges; for a message whose lost ack would repeat a call (a replayed due message) it
   * waits for the server to confirm, false if it could not. A marker's is sent and not waited for.
   */
  ack(): Promise<boolean>;
  /** Acknowledges without waiting: for what nothing depends on (a timer's own delivery). */
  ackNow(): void;
  nak(delayMs?: number): void;
  term(reason: string): void;
}

export interface SettleDeps {
  /** FOLLOWUP_RESULTS (in atomic batches) and FOLLOWUP_DLQ. */
  publishers: { results: ResultPublisher; deadLetters: ResultPublisher };
  metrics: DispatcherMetrics;
  maxAttempts: number;
  backoff: DeliveryBackoff;
  now: () => Date;
  random?: () => number;
}

/** When the broker failed us (lead read, result publish), try the follow-up again after this long. */
export const BROKER_RETRY_MS = 1_000;

/**
 * A broker read or publish is tried again on the message this process holds (kept alive with
 * working()) before the message is handed back: a nak sent while the connection redials is
 * dropped by the client, and markers nak'd across a nats-server restart were seen never to be
 * delivered again (docs/reliability.md, "Found on the way"; the scheduler does the same).
 * 6 attempts 0.5-8 s apart ride out an outage of about 15 s.
 */
export const BROKER_HOLD_RETRY: Backoff = { baseMs: 500, maxMs: 8_000, jitter: 0.2, attempts: 6 };

/** What an attempt's result means for the message, in the channel metrics' words. */
const MESSAGE_RESULT = { ok: "sent", error: "retried", dead: "failed", suppressed: "suppressed" } as const;

/**
 * A retry delay moved, when the channel has hours (SMS send hours in the recipient's zone), to
 * the next moment they are open: a retry is never sent at night either.
 */
export function withinWindow(now: Date, delayMs: number, window: ChannelAnswer["retryWindow"]): number {
  if (!window) return delayMs;
  const at = nextAllowedTime(new Date(now.getTime() + delayMs), window.windows, window.zone).at;
  return at === null ? delayMs : Math.max(delayMs, at.getTime() - now.getTime());
}

/** Runs a broker call with BROKER_HOLD_RETRY; a contract error (a record that does not parse) is not retried. */
export function onBroker<T>(run: () => Promise<T>, log: Logger, what: string): Promise<T> {
  return retry(run, BROKER_HOLD_RETRY, {
    retryable: (err) => !(err instanceof ZodError),
    onRetry: (err, attempt, retryInMs) =>
      log.warn({ err: describeError(err), attempt, retry_in_ms: retryInMs }, `${what}_failed_retrying_held`),
  });
}

/** Hands a due follow-up back for redelivery (after `delayMs`) without an attempt. */
export function release(
  held: HeldDue,
  deps: Pick<SettleDeps, "metrics">,
  reason: "shutdown" | "not_due" | "broker",
  delayMs?: number,
): void {
  deps.metrics.released.inc({ reason });
  held.nak(delayMs);
}

export interface Attempt {
  tenant: string;
  due: FollowupDueData;
  /** The attempt's number, across replays (what the hook, the result and the dead letter say). */
  attempt: number;
  /** This replay's delivery count: what the retry budget and the back-off go by. */
  delivery: number;
  /** What the channel answered. */
  answer: ChannelAnswer;
  durationMs: number;
}

/**
 * Turns a channel's answer into the attempt's result (and a dead letter), publishes them and
 * waits for their acks (the result's batch committed), and only then settles the message: acked
 * when delivered or dead,
 * nak'd with the back-off when it will be retried. A crash before the settle redelivers it.
 */
export async function settleAttempt(held: HeldDue, deps: SettleDeps, log: Logger, a: Attempt): Promise<void> {
  const { tenant, due, answer, attempt, delivery } = a;
  const now = deps.now();
  const decided = attemptResult(answer.classification, delivery, deps.maxAttempts);
  const { result } = decided;
  const latenessMs = result === "ok" ? now.getTime() - Date.parse(due.due_at) : undefined;
  const retryInMs =
    decided.result === "error"
      ? withinWindow(
          now,
          nextAttemptDelayMs(delivery, deps.backoff, {
            retryAfterMs: answer.retryAfterMs ?? null,
            ...(deps.random ? { random: deps.random } : {}),
          }),
          answer.retryWindow,
        )
      : undefined;

  // `strategy` (`<delay>s`) only where the system it replaces had it: this metric's label, this log line.
  const strategy = strategyName(due.delay_s);
  deps.metrics.attempts.inc({ strategy, result });
  deps.metrics.duration.observe({ channel: due.channel, result }, a.durationMs / 1000);
  if (latenessMs !== undefined && due.replays === 0)
    deps.metrics.lateness.observe(Math.max(0, latenessMs) / 1000);
  if (decided.result === "error") deps.metrics.retries.inc({ reason: decided.reason });
  const provider = answer.provider ?? due.channel;
  deps.metrics.messages.inc({ channel: due.channel, provider, result: MESSAGE_RESULT[result] });
  if (answer.providerDurationMs !== undefined)
    deps.metrics.providerDuration.observe(
      { channel: due.channel, provider, result: MESSAGE_RESULT[result] },
      answer.providerDurationMs / 1000,
    );

  const fields = {
    strategy,
    channel: due.channel,
    ...(answer.provider !== undefined ? { provider: answer.provider } : {}),
    status_code: answer.statusCode,
    result,
    ...(answer.reason !== undefined ? { reason: answer.reason } : {}),
    ...(answer.providerMessageId !== undefined ? { provider_message_id: answer.providerMessageId } : {}),
    duration_ms: Math.round(a.durationMs),
    ...(answer.error !== undefined ? { error: answer.error } : {}),
    ...(retryInMs !== undefined ? { retry_in_ms: retryInMs } : {}),
    ...(latenessMs !== undefined ? { lateness_ms: latenessMs } : {}),
  };
  const event = { tenant, due, channel: due.channel, time: now };

  try {
    await onBroker(
      () =>
        publish(
          deps.publishers.results,
          subjects.followupResult(tenant, due.lead_id, due.step),
          resultEvent({
            ...event,
            attempt,
            result,
            statusCode: answer.statusCode,
            error: answer.error,
            durationMs: a.durationMs,
            retryInMs,
            latenessMs,
            provider: answer.provider,
            providerMessageId: answer.providerMessageId,
            reason: answer.reason,
          }),
          resultMsgId({ leadId: due.lead_id, step: due.step }, due.replays, attempt),
        ),
      log,
      "result_publish",
    );
    if (decided.result === "dead") {
      const reason = decided.deadReason;
      const letter = deadLetterEvent({
        ...event,
        attempts: attempt,
        reason,
        lastStatusCode: answer.statusCode,
        lastError: answer.error ?? "not delivered",
      });
      await onBroker(
        () =>
          publish(
            deps.publishers.deadLetters,
            subjects.followupDead(tenant, due.lead_id, due.step),
            letter,
            deadLetterMsgId({ leadId: due.lead_id, step: due.step }, due.replays),
          ),
        log,
        "dead_letter_publish",
      );
      deps.metrics.deadLetters.inc({ reason });
      log.error({ ...fields, reason, idempotency_key: due.idempotency_key }, "followup_executed");
    } else if (result === "error") {
      log.warn(fields, "followup_executed");
    } else {
      log.info(fields, "followup_executed");
    }
  } catch (err) {
    // Not settled, so it comes back: at worst a duplicate call, which the idempotency key absorbs.
    log.warn({ ...fields, err: describeError(err) }, "result_publish_failed_retrying");
    release(held, deps, "broker", BROKER_RETRY_MS);
    return;
  }

  if (result === "error") {
    held.nak(retryInMs);
    return;
  }
  if (!(await held.ack())) log.warn({ result }, "ack_unconfirmed");
}

async function publish(to: ResultPublisher, subject: string, event: { type: string }, msgID: string) {
  await to.publish(subject, encodeEvent(event), msgID);
}
