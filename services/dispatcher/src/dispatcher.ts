import { setMaxListeners } from "node:events";
import type { ConsumerSpec, Topology } from "@followup/contracts";
import {
  BatchedKvReads,
  flatLineLogger,
  isNoMessages,
  isWrongLastSequence,
  type Readiness,
} from "@followup/service-kit";
import { type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { ChannelRegistry } from "./channels/channel.js";
import { describeError } from "./classify.js";
import { type DeliveryDeps, handleDue } from "./delivery.js";
import { handleMarker, MARKER_CONCURRENCY, type MarkerDeps } from "./markers.js";
import type { DispatcherMetrics } from "./metrics.js";
import {
  NEXT_TIMER_WINDOW_MS,
  RESULT_BATCH_WINDOW_MS,
  ResultBatches,
  singlePublisher,
} from "./result-batches.js";
import type { DeliveryBackoff } from "./retry-after.js";
import type { HeldDue } from "./settle.js";
import { Slots } from "./slots.js";

export interface DispatcherDeps {
  nc: NatsConnection;
  topology: Topology;
  channels: ChannelRegistry;
  metrics: DispatcherMetrics;
  logger: Logger;
  /** At this delivery a retryable failure becomes a dead letter (FOLLOWUP_MAX_ATTEMPTS). */
  maxAttempts: number;
  backoff: DeliveryBackoff;
  /** Due follow-ups of the work queue held at once, waiting or in a call (DISPATCH_CONCURRENCY). */
  concurrency: number;
  /** Timer messages held at once, mostly waiting for due_at or a channel slot (MARKER_CONCURRENCY). */
  markerConcurrency?: number;
  /** FOLLOWUP_CHANNEL: the channel of every follow-up a marker makes due. */
  channel?: string;
  /** How long a result waits for others to share its atomic batch (RESULT_BATCH_WINDOW_MS). */
  resultBatchWindowMs?: number;
  /** How long stop() waits for calls in flight before handing them back (DISPATCH_SHUTDOWN_GRACE_MS). */
  shutdownGraceMs?: number;
  now?: () => Date;
  random?: () => number;
  /** Kept up to date under the check "consumer": false while pulls fail or once stopping. */
  readiness?: Readiness;
}

export interface DispatcherHandle {
  /** Stops pulling, lets calls in flight finish (bounded), settles every held message. Idempotent. */
  stop(): Promise<void>;
  /** Due follow-ups and markers held right now. */
  readonly held: number;
}

/**
 * How long one pull request waits for due follow-ups. On stop the outstanding pull is left to
 * run out rather than cancelled: a cancelled pull can lose messages already on the wire to an
 * ack-wait timeout, while one that runs out hands each of them back at once.
 */
const PULL_EXPIRES_MS = 3_000;
const PULL_RETRY_MS = 1_000;
const ACK_TIMEOUT_MS = 5_000;

/**
 * Starts delivering from two shared durable consumers: the timer stream's expiry markers
 * (`dispatcher-markers`: a fired timer is delivered here, with no followup.due hop) and the work
 * queue (`dispatcher`: replayed dead letters). Work is pulled only for free slots (`fetch` of as
 * many as are free), so a copy never hoards messages it cannot work on and every copy gets its
 * share; each held message is kept alive (`working()`) until it is settled.
 */
export async function startDispatcher(deps: DispatcherDeps): Promise<DispatcherHandle> {
  const logger = deps.logger.child({ component: "dispatcher" });
  const js = jetstream(deps.nc);
  const jsm = await jetstreamManager(deps.nc);
  // A plan and a lead are read per marker; in a burst thousands come at once, so the reads go
  // in batched direct gets (a request per batch instead of two per follow-up).
  const reads = (bucket: string) =>
    new BatchedKvReads(jsm, bucket, (keys) => deps.metrics.readBatches.observe({ bucket }, keys));
  const leads = reads(deps.topology.buckets.leads.bucket);
  const plans = reads(deps.topology.buckets.plans.bucket);
  const markerConcurrency = deps.markerConcurrency ?? MARKER_CONCURRENCY;

  const channelSlots = new Map<string, Slots>();
  for (const name of deps.channels.names()) {
    channelSlots.set(name, new Slots(deps.channels.get(name)!.concurrency));
  }
  const results = new ResultBatches({
    js,
    logger,
    windowMs: deps.resultBatchWindowMs ?? RESULT_BATCH_WINDOW_MS,
    onBatch: (size, fellBack) => deps.metrics.resultBatches.observe({ fell_back: String(fellBack) }, size),
  });
  // The next step's timer, written when a step's marker fires (one timer per lead at a time).
  const timers = new ResultBatches({
    js,
    logger,
    windowMs: NEXT_TIMER_WINDOW_MS,
    what: "timer",
    storedAlready: isWrongLastSequence,
  });
  const deliveryDeps: DeliveryDeps = {
    publishers: { results, deadLetters: singlePublisher(js) },
    leads,
    channels: deps.channels,
    channelSlots,
    metrics: deps.metrics,
    // The lines of each follow-up (markers, delivery, results) have flat fields only.
    logger: flatLineLogger(logger),
    maxAttempts: deps.maxAttempts,
    backoff: deps.backoff,
    now: deps.now ?? (() => new Date()),
    ...(deps.random ? { random: deps.random } : {}),
  };
  const resultsStream = deps.topology.streams.results.name;
  const markerDeps: MarkerDeps = {
    ...deliveryDeps,
    plans,
    timers,
    channel: deps.channel ?? "hook",
    readLastResult: async (subject) => {
      try {
        return (await jsm.direct.getMessage(resultsStream, { last_by_subj: subject }))?.data ?? null;
      } catch (err) {
        if (isNoMessages(err)) return null;
        throw err;
      }
    },
  };

  const stopController = new AbortController();
  const forceController = new AbortController();
  // Each held message may listen on these (a hold, a call): bounded by the concurrency, not a leak.
  setMaxListeners(deps.concurrency + markerConcurrency + 16, stopController.signal, forceController.signal);
  const control = {
    stopping: () => stopController.signal.aborted,
    stopSignal: stopController.signal,
    forceSignal: forceController.signal,
  };
  const held = new Set<HeldMessage>();
  const handBack = new HandBack();
  const stopped = aborted(stopController.signal);
  const failing = new Set<string>();

  const input = async (
    spec: ConsumerSpec,
    slots: Slots,
    handle: (message: HeldMessage) => Promise<void>,
    confirmAcks: boolean,
  ) => {
    const consumer = await js.consumers.get(spec.stream, spec.durable);
    const keepAliveMs = Math.max(500, Math.floor(spec.ackWaitMs / 3));
    const start = (msg: JsMsg, releaseSlot: () => void) => {
      const message = new HeldMessage(msg, keepAliveMs, handBack, control.stopping, confirmAcks);
      held.add(message);
      handle(message)
        .catch((err: unknown) => {
          logger.error({ subject: msg.subject, seq: msg.seq, err: describeError(err) }, "delivery_failed");
          message.nak(PULL_RETRY_MS);
        })
        .finally(() => {
          message.dispose();
          held.delete(message);
          releaseSlot();
        });
    };
    // A pull asks for a sixteenth of the slots at least: when every slot is busy (a burst), a
    // pull per finished message would cost a request and a server-side pull for each.
    const pullAtLeast = Math.max(1, Math.floor(slots.size / 16));
    const pullLoop = async () => {
      while (!control.stopping()) {
        await Promise.race([slots.whenFree(pullAtLeast), stopped]);
        if (control.stopping()) break;
        try {
          const batch = await consumer.fetch({ max_messages: slots.free, expires: PULL_EXPIRES_MS });
          for await (const msg of batch) {
            if (control.stopping()) {
              // Arrived after stop(): handed back once this pull has ended, so it cannot come back here.
              deps.metrics.released.inc({ reason: "shutdown" });
              handBack.add(() => msg.nak());
              continue;
            }
            const releaseSlot = slots.tryAcquire();
            if (!releaseSlot) {
              // Never expected (a pull asks for free slots only); the delay keeps it from bouncing back at once.
              msg.nak(PULL_RETRY_MS);
              continue;
            }
            start(msg, releaseSlot);
          }
          if (failing.delete(spec.durable)) {
            logger.info({ consumer: spec.durable }, "pull_recovered");
            if (failing.size === 0) deps.readiness?.set("consumer", true);
          }
        } catch (err) {
          // Logged once per outage, not once per retry.
          if (!failing.has(spec.durable)) {
            logger.error({ err: describeError(err), consumer: spec.durable }, "pull_failed");
          }
          deps.readiness?.set("consumer", false, `pull failed: ${describeError(err)}`);
          failing.add(spec.durable);
          await Promise.race([pauseMs(PULL_RETRY_MS), stopped]);
        }
      }
    };
    return pullLoop();
  };

  const { dispatchMarkers, dispatch } = deps.topology.consumers;
  const markerSlots = new Slots(markerConcurrency);
  const dueSlots = new Slots(deps.concurrency);
  const inputs = [
    { spec: dispatchMarkers, slots: markerSlots },
    { spec: dispatch, slots: dueSlots },
  ];
  // Both consumers are looked up before either pulls, so a missing one fails the start.
  await Promise.all(inputs.map(({ spec }) => js.consumers.get(spec.stream, spec.durable)));
  // A marker's ack is not waited for: if it is lost, the marker comes back and its stored result
  // settles it with one read (markers.ts, settledBefore). A replayed due message's is: the work
  // queue would deliver it again, and call the channel again.
  const loops = Promise.all([
    input(dispatchMarkers, markerSlots, (m) => handleMarker(m, control, markerDeps), false),
    input(dispatch, dueSlots, (m) => handleDue(m, control, deliveryDeps), true),
  ]);
  deps.readiness?.set("consumer", true);
  logger.info(
    {
      consumers: inputs.map(({ spec }) => `${spec.stream}/${spec.durable}`),
      concurrency: deps.concurrency,
      marker_concurrency: markerConcurrency,
      channels: deps.channels.names(),
    },
    "dispatcher_consuming",
  );

  const idle = () => Promise.all([markerSlots.whenIdle(), dueSlots.whenIdle()]);
  let stopping: Promise<void> | undefined;
  const stop = async () => {
    stopController.abort();
    deps.readiness?.set("consumer", false, "stopping");
    const graceMs = deps.shutdownGraceMs ?? 20_000;
    const drained = Promise.all([loops, idle()]).then(() => true);
    const inTime = await Promise.race([drained, pauseMs(graceMs).then(() => false)]);
    if (!inTime) {
      logger.warn({ held: held.size, grace_ms: graceMs }, "shutdown_grace_exceeded_handing_back");
      forceController.abort();
      for (const message of held) {
        if (!message.settled) {
          deps.metrics.released.inc({ reason: "shutdown" });
          message.nak();
        }
      }
      await Promise.race([idle(), pauseMs(2_000)]);
    }
    // The last pulls have run out (within PULL_EXPIRES_MS): what is handed back now goes to
    // other copies, not back into this one's pull to be handed back again and again.
    await loops;
    const handedBack = handBack.flush();
    // Handed-back messages stay pending on the consumer (nak'd) until another copy takes them.
    logger.info({ held: held.size, handed_back: handedBack }, "dispatcher_stopped");
  };

  return {
    stop() {
      stopping ??= stop();
      return stopping;
    },
    get held() {
      return held.size;
    },
  };
}

/**
 * Messages handed back during a shutdown. A nak'd message is redelivered at once, and while the
 * stopping process still has a pull outstanding it would be redelivered to that pull, handed back
 * again, and so on. So hand-backs wait until the pull loop has ended, then go out together.
 */
class HandBack {
  #pending: (() => void)[] | null = [];
  #count = 0;

  add(nak: () => void): void {
    this.#count++;
    if (this.#pending) this.#pending.push(nak);
    else nak();
  }

  /** Naks everything deferred; later hand-backs go out at once. Returns how many were handed back. */
  flush(): number {
    const pending = this.#pending ?? [];
    this.#pending = null;
    for (const nak of pending) nak();
    return this.#count;
  }
}

/** A pulled message (a due follow-up or a timer message): kept alive while held, settled exactly once. */
class HeldMessage implements HeldDue {
  #settled = false;
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly msg: JsMsg,
    keepAliveMs: number,
    private readonly handBack: HandBack,
    private readonly stopping: () => boolean,
    /** Whether ack() waits for the server's confirmation (a round trip per message). */
    private readonly confirmAcks: boolean,
  ) {
    this.#timer = setInterval(() => {
      if (!this.#settled) msg.working();
    }, keepAliveMs);
    this.#timer.unref();
  }

  get settled(): boolean {
    return this.#settled;
  }

  ackNow(): void {
    if (this.#settle()) this.msg.ack();
  }

  async ack(): Promise<boolean> {
    if (!this.#settle()) return false;
    if (!this.confirmAcks) {
      this.msg.ack();
      return true;
    }
    try {
      return await this.msg.ackAck({ timeout: ACK_TIMEOUT_MS });
    } catch {
      return false;
    }
  }

  nak(delayMs?: number): void {
    if (!this.#settle()) return;
    if (delayMs !== undefined && delayMs > 0) this.msg.nak(Math.ceil(delayMs));
    // Handed back during a shutdown: deferred until the last pull has ended (well within the ack wait).
    else if (this.stopping()) this.handBack.add(() => this.msg.nak());
    else this.msg.nak();
  }

  term(reason: string): void {
    if (this.#settle()) this.msg.term(reason);
  }

  dispose(): void {
    clearInterval(this.#timer);
  }

  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    clearInterval(this.#timer);
    return true;
  }
}

function pauseMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}
