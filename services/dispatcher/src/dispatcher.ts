import { setMaxListeners } from "node:events";
import type { Topology } from "@followup/contracts";
import type { Readiness } from "@followup/service-kit";
import { type JsMsg, jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { ChannelRegistry } from "./channels/channel.js";
import { describeError } from "./classify.js";
import { type DeliveryDeps, handleDue } from "./delivery.js";
import type { DispatcherMetrics } from "./metrics.js";
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
  /** Due follow-ups held at once, waiting or in a call (DISPATCH_CONCURRENCY). */
  concurrency: number;
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
  /** Due follow-ups held right now. */
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
 * Starts delivering due follow-ups from the shared durable consumer. Work is pulled only for free
 * slots (`fetch` of as many as are free), so a copy never hoards messages it cannot work on and
 * every copy gets its share; each held message is kept alive (`working()`) until it is settled.
 */
export async function startDispatcher(deps: DispatcherDeps): Promise<DispatcherHandle> {
  const spec = deps.topology.consumers.dispatch;
  const logger = deps.logger.child({ component: "dispatcher" });
  const js = jetstream(deps.nc);
  const consumer = await js.consumers.get(spec.stream, spec.durable);
  const leads = await new Kvm(deps.nc).open(deps.topology.buckets.leads.bucket);
  const slots = new Slots(deps.concurrency);
  const keepAliveMs = Math.max(500, Math.floor(spec.ackWaitMs / 3));

  const channelSlots = new Map<string, Slots>();
  for (const name of deps.channels.names()) {
    channelSlots.set(name, new Slots(deps.channels.get(name)!.concurrency));
  }
  const deliveryDeps: DeliveryDeps = {
    js,
    leads,
    channels: deps.channels,
    channelSlots,
    metrics: deps.metrics,
    logger,
    maxAttempts: deps.maxAttempts,
    backoff: deps.backoff,
    now: deps.now ?? (() => new Date()),
    ...(deps.random ? { random: deps.random } : {}),
  };

  const stopController = new AbortController();
  const forceController = new AbortController();
  // Each held follow-up may listen on these (a hold, a call): bounded by the concurrency, not a leak.
  setMaxListeners(deps.concurrency + 16, stopController.signal, forceController.signal);
  const control = {
    stopping: () => stopController.signal.aborted,
    stopSignal: stopController.signal,
    forceSignal: forceController.signal,
  };
  const held = new Set<HeldMessage>();
  const handBack = new HandBack();

  const start = (msg: JsMsg, releaseSlot: () => void) => {
    const message = new HeldMessage(msg, keepAliveMs, handBack, control.stopping);
    held.add(message);
    handleDue(message, control, deliveryDeps)
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

  const stopped = aborted(stopController.signal);
  const pullLoop = async () => {
    let failing = false;
    while (!control.stopping()) {
      await Promise.race([slots.whenFree(), stopped]);
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
        if (failing) {
          logger.info("pull_recovered");
          deps.readiness?.set("consumer", true);
        }
        failing = false;
      } catch (err) {
        // Logged once per outage, not once per retry.
        if (!failing) logger.error({ err: describeError(err), consumer: spec.durable }, "pull_failed");
        deps.readiness?.set("consumer", false, `pull failed: ${describeError(err)}`);
        failing = true;
        await Promise.race([pauseMs(PULL_RETRY_MS), stopped]);
      }
    }
  };
  const loop = pullLoop();
  deps.readiness?.set("consumer", true);
  logger.info(
    {
      stream: spec.stream,
      consumer: spec.durable,
      concurrency: deps.concurrency,
      channels: deps.channels.names(),
    },
    "dispatcher_consuming",
  );

  let stopping: Promise<void> | undefined;
  const stop = async () => {
    stopController.abort();
    deps.readiness?.set("consumer", false, "stopping");
    const graceMs = deps.shutdownGraceMs ?? 20_000;
    const drained = Promise.all([loop, slots.whenIdle()]).then(() => true);
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
      await Promise.race([slots.whenIdle(), pauseMs(2_000)]);
    }
    // The last pull has run out (within PULL_EXPIRES_MS): what is handed back now goes to
    // other copies, not back into this one's pull to be handed back again and again.
    await loop;
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

/** A pulled message: kept alive while held, settled exactly once. */
class HeldMessage implements HeldDue {
  #settled = false;
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly msg: JsMsg,
    keepAliveMs: number,
    private readonly handBack: HandBack,
    private readonly stopping: () => boolean,
  ) {
    this.#timer = setInterval(() => {
      if (!this.#settled) msg.working();
    }, keepAliveMs);
    this.#timer.unref();
  }

  get settled(): boolean {
    return this.#settled;
  }

  async ack(): Promise<boolean> {
    if (!this.#settle()) return false;
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
