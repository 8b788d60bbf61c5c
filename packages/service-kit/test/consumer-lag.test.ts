import { type NatsServer, startNatsServer } from "@followup/nats-harness";
import { AckPolicy, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consumerLagMetrics, createMetricsRegistry, readConsumerLag } from "../src/metrics.js";

// The lag gauges read a real nats-server's consumer info on scrape.

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;

const STREAM = "LAG";
const CONSUMERS = [
  { stream: STREAM, durable: "lag-a" },
  { stream: STREAM, durable: "lag-b" },
];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ["lag.>"] });
  for (const { durable } of CONSUMERS) {
    await jsm.consumers.add(STREAM, { durable_name: durable, ack_policy: AckPolicy.Explicit });
  }
});

afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
});

/** The value of `name{consumer="<consumer>"}` in the registry's exposition, or undefined. */
function sample(text: string, name: string, consumer: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(`consumer="${consumer}"`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("consumerLagMetrics", () => {
  it("reports each consumer's undelivered and unacknowledged messages on scrape", async () => {
    const js = jetstream(nc);
    for (let i = 0; i < 5; i++) await js.publish(`lag.${i}`, "x");
    const consumer = await js.consumers.get(STREAM, "lag-a");
    const batch = await consumer.fetch({ max_messages: 2, expires: 2000 });
    let held = 0;
    for await (const _msg of batch) if (++held === 2) break;
    expect(held).toBe(2);

    const registry = createMetricsRegistry("lag-test");
    consumerLagMetrics(registry, () => readConsumerLag(jsm, CONSUMERS));
    const text = await registry.metrics();
    expect(sample(text, "jetstream_consumer_pending", "lag-a")).toBe(3);
    expect(sample(text, "jetstream_consumer_ack_pending", "lag-a")).toBe(2);
    expect(sample(text, "jetstream_consumer_pending", "lag-b")).toBe(5);
    expect(sample(text, "jetstream_consumer_ack_pending", "lag-b")).toBe(0);
  });

  it("keeps the last values while the broker cannot be read", async () => {
    const registry = createMetricsRegistry("lag-test");
    let reads = 0;
    consumerLagMetrics(registry, async () => {
      reads++;
      if (reads > 1) throw new Error("broker unreachable");
      return [{ consumer: "lag-a", pending: 7, ackPending: 1 }];
    });
    await registry.metrics();
    const text = await registry.metrics();
    expect(reads).toBe(2);
    expect(sample(text, "jetstream_consumer_pending", "lag-a")).toBe(7);
    expect(sample(text, "jetstream_consumer_ack_pending", "lag-a")).toBe(1);
  });
});
