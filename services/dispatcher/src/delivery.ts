import {
  attemptNumber,
  decodeEvent,
  type FollowupDue,
  idempotencyKey,
  parseFollowupSubject,
  type StopReason,
} from "@followup/contracts";
import { pause, readStopReason } from "@followup/service-kit";
import type { JsMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import type { ChannelAnswer, ChannelRegistry } from "./channels/channel.js";
import { classifyError, describeError } from "./classify.js";
import { BROKER_RETRY_MS, type HeldDue, release, type SettleDeps, settleAttempt } from "./settle.js";
import type { Slots } from "./slots.js";

export interface DeliveryDeps extends SettleDeps {
  leads: KV;
  channels: ChannelRegistry;
  /** Each channel's own limit on calls in flight, by channel name. */
  channelSlots: Map<string, Slots>;
  logger: Logger;
}

export interface DeliveryControl {
  /** True once a shutdown began: work whose call has not started is handed back. */
  stopping: () => boolean;
  /** Aborted when a shutdown begins (ends holds for not-yet-due follow-ups). */
  stopSignal: AbortSignal;
  /** Aborted when a shutdown can wait no longer for calls in flight. */
  forceSignal: AbortSignal;
}

/** A follow-up due within this long is held here rather than handed back: clocks differ by milliseconds. */
export const HOLD_MAX_MS = 2_000;

/**
 * One due follow-up: check it, call its channel, publish the attempt's result (and dead letter),
 * and only then settle the message, so a crash at any point redelivers rather than loses it.
 */
export async function handleDue(held: HeldDue, control: DeliveryControl, deps: DeliveryDeps): Promise<void> {
  const { msg } = held;
  // This replay's delivery count: the retry budget. The attempt's number goes on across replays.
  const delivery = msg.info.deliveryCount;

  let event: FollowupDue;
  try {
    event = decodeDue(msg);
  } catch (err) {
    deps.metrics.invalidEvents.inc();
    deps.logger.error(
      { subject: msg.subject, seq: msg.seq, err: (err as Error).message },
      "invalid_due_event_terminated",
    );
    held.term(`invalid followup.due.v1: ${(err as Error).message}`.slice(0, 200));
    return;
  }
  const due = event.data;
  const tenant = event.tenant;
  const attempt = attemptNumber(due, delivery);
  const log = deps.logger.child({ tenant, lead_id: due.lead_id, step: due.step, attempt });

  let stop: StopReason | null;
  try {
    stop = await readStopReason(deps.leads, { tenant, leadId: due.lead_id }, (error) =>
      log.warn({ error }, "lead_unreadable_delivering_anyway"),
    );
  } catch (err) {
    log.warn({ err: describeError(err) }, "lead_read_failed_retrying");
    return release(held, deps, "broker", BROKER_RETRY_MS);
  }
  if (stop) {
    deps.metrics.stopped.inc({ reason: stop });
    log.info({ reason: stop, delay_s: due.delay_s }, "followup_stopped");
    await held.ack();
    return;
  }

  // Never early: a replay or a clock step can bring a follow-up before its time.
  const earlyMs = Date.parse(due.due_at) - deps.now().getTime();
  if (earlyMs > 0) {
    if (earlyMs > HOLD_MAX_MS || control.stopping()) {
      log.debug({ early_ms: earlyMs }, "followup_not_due_yet");
      return release(held, deps, "not_due", earlyMs);
    }
    if (!(await pause(earlyMs, control.stopSignal))) {
      return release(held, deps, "not_due", Math.max(1, Date.parse(due.due_at) - deps.now().getTime()));
    }
  }
  if (control.stopping()) return release(held, deps, "shutdown");

  const channel = deps.channels.get(due.channel);
  if (!channel) {
    const known = deps.channels.names().join(", ");
    return settleAttempt(held, deps, log, {
      tenant,
      due,
      attempt,
      delivery,
      answer: {
        classification: { kind: "permanent" },
        statusCode: null,
        error: `unknown channel ${JSON.stringify(due.channel)} (known: ${known})`,
      },
      durationMs: 0,
    });
  }

  const releaseSlot = await deps.channelSlots.get(channel.name)!.acquire();
  if (control.stopping()) {
    releaseSlot();
    return release(held, deps, "shutdown");
  }
  deps.metrics.inFlight.inc();
  const started = performance.now();
  let answer: ChannelAnswer;
  try {
    answer = await channel.send({
      tenant,
      due,
      attempt,
      idempotencyKey: due.idempotency_key,
      signal: control.forceSignal,
    });
  } catch (err) {
    // Channels classify their failures; this is for one that throws anyway.
    answer = { classification: classifyError(err), statusCode: null, error: describeError(err) };
  } finally {
    deps.metrics.inFlight.dec();
    releaseSlot();
  }
  const durationMs = performance.now() - started;
  // A shutdown that could wait no longer has handed it back already.
  if (held.settled) return;
  return settleAttempt(held, deps, log, { tenant, due, attempt, delivery, answer, durationMs });
}

function decodeDue(msg: JsMsg): FollowupDue {
  const event = decodeEvent("followup.due.v1", msg.data);
  const ref = parseFollowupSubject(msg.subject, "due");
  const due = event.data;
  if (ref.tenant !== event.tenant || ref.leadId !== due.lead_id || ref.step !== due.step) {
    throw new Error(
      `subject ${msg.subject} does not match the event (tenant ${event.tenant}, lead_id ${due.lead_id}, step ${due.step})`,
    );
  }
  const expectedKey = idempotencyKey(ref);
  if (due.idempotency_key !== expectedKey) {
    throw new Error(`idempotency_key must be ${expectedKey} (got ${JSON.stringify(due.idempotency_key)})`);
  }
  return event;
}
