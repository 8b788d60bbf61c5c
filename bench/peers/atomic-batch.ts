import {
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { followupBody, followupTail } from "../followups.js";
import { inWindow } from "../window.js";
import type { PeerFollowup } from "./hook-call.js";

/**
 * The ceiling of a timer store built on atomic batch publish (ADR-50): `Nats-TTL` timers, one
 * per subject, on a `max_msgs_per_subject: 1` stream with `allow_msg_ttl` and `allow_atomic`,
 * published in batches of 1000 (the server's limit). nats-server commits a batch with a few
 * fsyncs whatever its size, so at `sync_interval: always` this is what one Node process can
 * store durably when nothing but the timers is written: no plan, no dedupe, no expected
 * sequence. A design that schedules through batches is read against it.
 */
export const BATCH_TIMER_STREAM = "BATCH_TIMERS";
/** nats-server's limit on the messages of one atomic batch. */
export const ATOMIC_BATCH_MAX = 1000;
/** Batches in flight at once (the server allows 50 per stream). */
export const BATCHES_IN_FLIGHT = 4;

export async function provisionBatchTimerStream(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: BATCH_TIMER_STREAM,
    subjects: ["batch.timer.>"],
    storage: StorageType.File,
    num_replicas: 1,
    max_msgs_per_subject: 1,
    allow_msg_ttl: true,
    allow_atomic: true,
  });
}

/** One timer as subject, body and raw headers: a batch's add() and commit() take no `ttl` option. */
function timerMessage(followup: PeerFollowup) {
  const h = headers();
  h.set("Nats-TTL", String(Math.max(1, Math.ceil((Date.parse(followup.due_at) - Date.now()) / 1000))));
  return [`batch.timer.${followupTail(followup)}`, followupBody(followup), h] as const;
}

/**
 * Stores follow-ups 0..count-1 as timers in atomic batches of `size`, `inFlight` batches at
 * once; resolves with the elapsed ms from the first batch's start to the last commit's ack.
 */
export function publishTimerBatches(
  js: JetStreamClient,
  followups: (index: number) => PeerFollowup,
  count: number,
  options: { size?: number; inFlight?: number } = {},
): Promise<number> {
  const size = Math.min(ATOMIC_BATCH_MAX, options.size ?? ATOMIC_BATCH_MAX);
  const batches = Math.ceil(count / size);
  return inWindow(batches, options.inFlight ?? BATCHES_IN_FLIGHT, async (b) => {
    const from = b * size;
    const to = Math.min(count, from + size);
    const [subject, body, first] = timerMessage(followups(from));
    // A batch of one is a plain publish: a batch is only stored once it is committed.
    if (to - from === 1) return js.publish(subject, body, { headers: first });
    const batch = await js.startBatch(subject, body, { headers: first });
    for (let i = from + 1; i < to - 1; i++) {
      const [s, payload, h] = timerMessage(followups(i));
      batch.add(s, payload, { headers: h });
    }
    const [last, payload, h] = timerMessage(followups(to - 1));
    const ack = await batch.commit(last, payload, { headers: h });
    if (ack.count !== to - from) throw new Error(`batch ${b}: ${ack.count} of ${to - from} stored`);
  });
}

/**
 * The ceiling itself: `count` follow-ups (as `followups` gives them) stored as timers on a fresh
 * stream of this broker, in timers per second; throws unless every one of them is stored.
 */
export async function atomicBatchTimerRate(
  broker: { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager },
  followups: (index: number) => PeerFollowup,
  count: number,
): Promise<number> {
  await provisionBatchTimerStream(broker.nc);
  const ms = await publishTimerBatches(broker.js, followups, count);
  const { state } = await broker.jsm.streams.info(BATCH_TIMER_STREAM);
  if (state.messages !== count) throw new Error(`atomic batches stored ${state.messages} of ${count} timers`);
  return (count / ms) * 1000;
}
