import {
  attemptNumber,
  decodeEvent,
  type FollowupDue,
  type FollowupDueData,
  idempotencyKey,
  parseFollowupSubject,
  type StopReason,
} from "@followup/contracts";
import { type KvReader, pause, readStopReason } from "@followup/service-kit";
import type { JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { ChannelAnswer, ChannelRegistry } from "./channels/channel.js";
import { classifyError, describeError } from "./classify.js";
import {
  BROKER_RETRY_MS,
  type HeldDue,
  onBroker,
  release,
  type SettleDeps,
  settleAttempt,
} from "./settle.js";
import type { Slots } from "./slots.js";

export interface DeliveryDeps extends SettleDeps {
  /** The leads bucket, read in batches (BatchedKvReads): whether the lead's follow-ups stop. */
  leads: KvReader;
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

/** A due follow-up ready to be worked on, from either input (the work queue or a marker). */
export interface DueInput {
  tenant: string;
  due: FollowupDueData;
  /** This replay's delivery count: the retry budget. The attempt's number goes on across replays. */
  delivery: number;
  /**
   * The lead's stop reason, read moments ago (with the plan, for a marker that came at or after
   * due_at): spares the read before the call. Read again whenever the follow-up was held.
   */
  stop?: StopReason | null;
  /** The plan's stop_on (a marker's): the outcomes that stop it; absent, the default ones. */
  stopOn?: readonly string[];
  /**
   * Until when a lead not (yet) in the bucket is waited for rather than stopped (epoch ms): a
   * marker's, because lead-intake writes the lead and publishes lead.scored together, and the
   * lead may still wait in its outbox.
   */
  leadMissingUntilMs?: number;
}

/** How often a missing lead is asked about again while it is waited for. */
export const LEAD_MISSING_RETRY_MS = 2_000;

/** A due follow-up from the work queue (a replayed dead letter): decoded, then delivered. */
export async function handleDue(held: HeldDue, control: DeliveryControl, deps: DeliveryDeps): Promise<void> {
  const { msg } = held;
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
  return deliver(held, control, deps, {
    tenant: event.tenant,
    due: event.data,
    delivery: msg.info.deliveryCount,
  });
}

/**
 * One due follow-up, whichever input it came from: never before due_at (held here for the last
 * fraction, handed back if further off), stopped if the lead's follow-ups stop (the lead read
 * after any hold), else its channel is called and the attempt's result (and dead letter) published,
 * and only then the message settled, so a crash at any point redelivers rather than loses it.
 */
export async function deliver(
  held: HeldDue,
  control: DeliveryControl,
  deps: DeliveryDeps,
  input: DueInput,
): Promise<void> {
  const { tenant, due, delivery } = input;
  const attempt = attemptNumber(due, delivery);
  const log = deps.logger.child({ tenant, lead_id: due.lead_id, step: due.step, attempt });

  // Never early: a marker comes up to a second before due_at (its TTL is floor-rounded), and a
  // replay or a clock step can bring a follow-up before its time.
  let wasHeld = false;
  const earlyMs = Date.parse(due.due_at) - deps.now().getTime();
  if (earlyMs > 0) {
    if (earlyMs > HOLD_MAX_MS || control.stopping()) {
      log.debug({ early_ms: earlyMs }, "followup_not_due_yet");
      return release(held, deps, "not_due", earlyMs);
    }
    if (!(await pause(earlyMs, control.stopSignal))) {
      return release(held, deps, "not_due", Math.max(1, Date.parse(due.due_at) - deps.now().getTime()));
    }
    wasHeld = true;
  }

  // Read at due time: an outcome recorded while it was held still stops it.
  let stop = wasHeld || input.stop === undefined ? undefined : input.stop;
  for (;;) {
    if (stop === undefined) {
      try {
        stop = await onBroker(
          () =>
            readStopReason(
              deps.leads,
              { tenant, leadId: due.lead_id },
              (error) => log.warn({ error }, "lead_unreadable_delivering_anyway"),
              input.stopOn,
            ),
          log,
          "lead_read",
        );
      } catch (err) {
        log.warn({ err: describeError(err) }, "lead_read_failed_retrying");
        return release(held, deps, "broker", BROKER_RETRY_MS);
      }
    }
    if (stop !== "lead_missing" || input.leadMissingUntilMs === undefined) break;
    if (deps.now().getTime() >= input.leadMissingUntilMs) break;
    // Held, not handed back: a nak would count a delivery, and deliveries are the attempts.
    log.warn({ due_at: due.due_at }, "lead_not_stored_yet_retrying");
    if (!(await pause(LEAD_MISSING_RETRY_MS, control.stopSignal))) return release(held, deps, "shutdown");
    stop = undefined;
  }
  if (stop) {
    deps.metrics.stopped.inc({ reason: stop });
    log.info({ reason: stop, delay_s: due.delay_s }, "followup_stopped");
    await held.ack();
    return;
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
