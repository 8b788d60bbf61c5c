import {
  type AttemptResult,
  encodeEvent,
  type FollowupDueData,
  strategyName,
  subjects,
} from "@followup/contracts";
import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { type BackoffPolicy, retryDelayMs } from "./backoff.js";
import type { ChannelResult } from "./channels/channel.js";
import { attemptOutcome, describeError } from "./classify.js";
import type { DispatcherMetrics } from "./metrics.js";
import { deadLetterEvent, deadLetterMsgId, resultEvent, resultMsgId } from "./results.js";

/** A due follow-up the dispatcher holds until it settles it exactly once. */
export interface HeldDue {
  readonly msg: JsMsg;
  /** True once acked, naked or terminated (also when a shutdown handed it back). */
  readonly settled: boolean;
  /** Acknowledges and waits for the server to confirm it; false if it could not confirm. */
  ack(): Promise<boolean>;
  nak(delayMs?: number): void;
  term(reason: string): void;
}

/** How a due message was settled. */
export type Settlement = "delivered" | "retry" | "dead" | "skipped" | "invalid" | "released";

export interface SettleDeps {
  js: JetStreamClient;
  metrics: DispatcherMetrics;
  maxAttempts: number;
  backoff: BackoffPolicy;
  now: () => Date;
  random?: () => number;
}

/** When the broker failed us (lead read, result publish), try the follow-up again after this long. */
export const BROKER_RETRY_MS = 1_000;
const PUBLISH_TIMEOUT_MS = 5_000;

/** Hands a due follow-up back for redelivery (after `delayMs`) without an attempt. */
export function release(
  held: HeldDue,
  deps: Pick<SettleDeps, "metrics">,
  reason: "shutdown" | "not_due" | "broker",
  delayMs?: number,
): Settlement {
  deps.metrics.released.inc({ reason });
  held.nak(delayMs);
  return "released";
}

export interface Attempt {
  tenant: string;
  due: FollowupDueData;
  attempt: number;
  result: ChannelResult;
  durationMs: number;
}

/**
 * Turns a channel's answer into the attempt's result (and a dead letter), publishes them and
 * waits for their acks, and only then settles the message: acked when delivered or dead,
 * nak'd with the back-off when it will be retried. A crash before the settle redelivers it.
 */
export async function settleAttempt(
  held: HeldDue,
  deps: SettleDeps,
  log: Logger,
  a: Attempt,
): Promise<Settlement> {
  const { due, result, attempt } = a;
  const now = deps.now();
  const strategy = strategyName(due.delay_s);
  const decided = attemptOutcome(result.verdict, attempt, deps.maxAttempts);
  const outcome: AttemptResult = decided.result;
  const latenessMs = outcome === "ok" ? now.getTime() - Date.parse(due.due_at) : undefined;
  const retryInMs =
    decided.result === "error"
      ? retryDelayMs(attempt, deps.backoff, {
          retryAfterMs: result.retryAfterMs ?? null,
          ...(deps.random ? { random: deps.random } : {}),
        })
      : undefined;

  deps.metrics.jobs.inc({ strategy, result: outcome });
  deps.metrics.duration.observe({ channel: due.channel, result: outcome }, a.durationMs / 1000);
  if (latenessMs !== undefined && due.replays === 0)
    deps.metrics.lateness.observe(Math.max(0, latenessMs) / 1000);
  if (decided.result === "error") deps.metrics.retries.inc({ reason: decided.reason });

  const fields = {
    strategy,
    channel: due.channel,
    status_code: result.statusCode,
    result: outcome,
    duration_ms: Math.round(a.durationMs),
    ...(result.error !== undefined ? { error: result.error } : {}),
    ...(retryInMs !== undefined ? { retry_in_ms: retryInMs } : {}),
    ...(latenessMs !== undefined ? { lateness_ms: latenessMs } : {}),
  };

  try {
    await publish(
      deps,
      subjects.followupResult(a.tenant, due.lead_id, due.step),
      resultEvent({
        tenant: a.tenant,
        due,
        channel: due.channel,
        attempt,
        result: outcome,
        statusCode: result.statusCode,
        error: result.error,
        durationMs: a.durationMs,
        retryInMs,
        latenessMs,
        time: now,
      }),
      resultMsgId(due, attempt),
    );
    if (decided.result === "dead") {
      const reason = decided.deadReason;
      await publish(
        deps,
        subjects.followupDead(a.tenant, due.lead_id, due.step),
        deadLetterEvent({
          tenant: a.tenant,
          due,
          channel: due.channel,
          attempts: attempt,
          reason,
          lastStatusCode: result.statusCode,
          lastError: result.error ?? "not delivered",
          time: now,
        }),
        deadLetterMsgId(due),
      );
      deps.metrics.deadLetters.inc({ reason });
      log.error({ ...fields, reason, idempotency_key: due.idempotency_key }, "followup_executed");
    } else if (outcome === "error") {
      log.warn(fields, "followup_executed");
    } else {
      log.info(fields, "followup_executed");
    }
  } catch (err) {
    // Not settled, so it comes back: at worst a duplicate call, which the idempotency key absorbs.
    log.warn({ ...fields, err: describeError(err) }, "result_publish_failed_retrying");
    return release(held, deps, "broker", BROKER_RETRY_MS);
  }

  if (outcome === "error") {
    held.nak(retryInMs);
    return "retry";
  }
  if (!(await held.ack())) log.warn({ result: outcome }, "ack_unconfirmed");
  return outcome === "ok" ? "delivered" : "dead";
}

async function publish(deps: SettleDeps, subject: string, event: { type: string }, msgID: string) {
  await deps.js.publish(subject, encodeEvent(event), { msgID, timeout: PUBLISH_TIMEOUT_MS });
}
