import type { JetStreamManager } from "@nats-io/jetstream";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/**
 * One registry per service (never prom-client's global one), so two services can run in one
 * process in tests. Default metrics (CPU, memory, event loop lag, GC) come with it.
 */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Declares a service's metrics on its registry, one line each: what varies between them is the
 * name, the help, the labels and (for histograms) the buckets.
 */
export function metricsOn(registry: Registry) {
  const registers = [registry];
  return {
    counter: <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Counter<L>({ name, help, labelNames, registers }),
    gauge: <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Gauge<L>({ name, help, labelNames, registers }),
    histogram: <L extends string = never>(
      name: string,
      help: string,
      buckets: number[],
      labelNames: readonly L[] = [],
    ) => new Histogram<L>({ name, help, buckets, labelNames, registers }),
  };
}

/** How far one durable consumer is behind, as the broker reports it. */
export interface ConsumerLag {
  /** The durable name. */
  consumer: string;
  /** Messages on the consumer's subjects not yet delivered to it (num_pending). */
  pending: number;
  /** Messages delivered and not yet acknowledged (num_ack_pending). */
  ackPending: number;
}

/** Each consumer's lag, read from the broker (one consumer info each). */
export async function readConsumerLag(
  jsm: JetStreamManager,
  consumers: readonly { stream: string; durable: string }[],
): Promise<ConsumerLag[]> {
  return Promise.all(
    consumers.map(async ({ stream, durable }) => {
      const info = await jsm.consumers.info(stream, durable);
      return { consumer: durable, pending: info.num_pending, ackPending: info.num_ack_pending };
    }),
  );
}

/**
 * `jetstream_consumer_pending{consumer}` and `jetstream_consumer_ack_pending{consumer}` of the
 * consumers a service pulls from, read on scrape with one read for both gauges. While the broker
 * is unreachable they keep their last values (readiness says why). Without `read` they stay empty.
 */
export function consumerLagMetrics(registry: Registry, read?: () => Promise<ConsumerLag[]>) {
  let inFlight: Promise<void> | undefined;
  const refresh = (): Promise<void> => {
    if (!read) return Promise.resolve();
    inFlight ??= read()
      .then((lags) => {
        for (const lag of lags) {
          pending.set({ consumer: lag.consumer }, lag.pending);
          ackPending.set({ consumer: lag.consumer }, lag.ackPending);
        }
      })
      .catch(() => undefined)
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
  const gauge = (name: string, help: string) =>
    new Gauge({ name, help, labelNames: ["consumer"] as const, registers: [registry], collect: refresh });
  const pending = gauge(
    "jetstream_consumer_pending",
    "Messages on a durable consumer's subjects not yet delivered to it (num_pending), by consumer, read on scrape",
  );
  const ackPending = gauge(
    "jetstream_consumer_ack_pending",
    "Messages delivered to a durable consumer and not yet acknowledged (num_ack_pending), by consumer, read on scrape",
  );
  return { consumerPending: pending, consumerAckPending: ackPending };
}
