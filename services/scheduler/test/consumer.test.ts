// The scheduler's consumer loop against a real nats-server: a broker failure is retried on the
// message this process holds before anything goes back to the server.

import { topology } from "@followup/contracts";
import { type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import { provisionTopology } from "@followup/service-kit";
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import { afterEach, beforeEach, expect, it } from "vitest";
import { InvalidEvent, startConsumerLoop } from "../src/consumer.js";

const topo = topology();
let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeEach(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
  await provisionTopology(nc, topo);
});

afterEach(async () => {
  await nc?.close();
  await server?.cleanup();
});

async function loop(handle: Parameters<typeof startConsumerLoop>[0]["handle"]) {
  const counts = { invalid: 0, retries: 0 };
  const consumerLoop = await startConsumerLoop({
    js: jetstream(nc),
    spec: topo.consumers.scored,
    name: "scored",
    concurrency: 4,
    logger: pino({ level: "silent" }),
    handle,
    onInvalid: () => counts.invalid++,
    onRetry: () => counts.retries++,
  });
  return { consumerLoop, counts };
}

it("a handler that fails twice then succeeds: run three times on one delivery, acked, never handed back", async () => {
  const runs: number[] = [];
  const { consumerLoop, counts } = await loop(async (msg) => {
    runs.push(msg.info.deliveryCount);
    if (runs.length < 3) throw new Error("timeout");
    msg.ack();
  });
  await jetstream(nc).publish("lead.scored.acme.l1", "{}");
  await waitFor(
    async () => {
      const info = await jsm.consumers.info(topo.consumers.scored.stream, topo.consumers.scored.durable);
      return info.num_ack_pending === 0 && info.ack_floor.stream_seq === 1 ? info : null;
    },
    { description: "the message to be acked", timeoutMs: 10_000 },
  );
  const info = await jsm.consumers.info(topo.consumers.scored.stream, topo.consumers.scored.durable);
  await consumerLoop.stop(1_000);
  expect(runs).toEqual([1, 1, 1]);
  expect(info.num_redelivered).toBe(0);
  expect(counts).toEqual({ invalid: 0, retries: 0 });
});

it("an invalid event is terminated at once, not retried here", async () => {
  let runs = 0;
  const { consumerLoop, counts } = await loop(async () => {
    runs++;
    throw new InvalidEvent("breaks its contract");
  });
  await jetstream(nc).publish("lead.scored.acme.l2", "{}");
  await waitFor(() => counts.invalid === 1, { description: "the event to be terminated", timeoutMs: 10_000 });
  await consumerLoop.stop(1_000);
  expect(runs).toBe(1);
  expect(counts.retries).toBe(0);
});
