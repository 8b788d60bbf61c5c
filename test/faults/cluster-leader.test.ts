// Fault 4: a 3-node JetStream cluster with R3 streams and buckets. The node leading the timer
// stream (FOLLOWUP_TIMERS) is killed with -9 while leads arrive and timers are pending; the other
// two elect a new leader and carry on, the services reconnect to them, and the killed node is
// started again later and catches up. Every node has the broker's authorization: the services
// run as their own identities.

import { rmSync } from "node:fs";
import { type NatsCluster, startNatsCluster, TEST_ADMIN, waitFor } from "@followup/nats-harness";
import type { BrokerAuth } from "@followup/service-kit";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Engine, startEngine, testBrokerAuth } from "../support/index.js";
import {
  ackPending,
  budget,
  DISPATCHER_CONSUMERS,
  expectedFollowups,
  postLeads,
  SCHEDULER_CONSUMERS,
  scaled,
  settle,
} from "./tally.js";

const LEADS = scaled(60, 300);
const DELAYS_S = [4, 8];
const SPREAD_MS = 8_000;

let broker: BrokerAuth;
let cluster: NatsCluster;
let engine: Engine;

beforeAll(async () => {
  broker = testBrokerAuth();
  cluster = await startNatsCluster({ size: 3, extraConfig: broker.authorization });
  engine = await startEngine({
    natsUrl: cluster.urls,
    broker,
    env: { NATS_REPLICAS: "3" },
    schedules: DELAYS_S.map((d) => `${d}s`).join(","),
  });
}, 120_000);

afterAll(async () => {
  await engine?.stop();
  await cluster?.cleanup();
  if (broker) rmSync(broker.dir, { recursive: true, force: true });
});

/** The server_name of the node leading a stream, asked of any node that answers. */
async function streamLeader(stream: string): Promise<string | undefined> {
  const nc = await connect({ servers: cluster.urls.split(","), name: "fault-probe", ...TEST_ADMIN });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 3_000 });
    return (await jsm.streams.info(stream)).cluster?.leader;
  } finally {
    await nc.close();
  }
}

/** The client URLs of every node but the one named. */
function survivors(killed: string): string {
  return cluster.servers
    .filter((server) => server.name !== killed)
    .map((server) => server.url)
    .join(",");
}

describe("kill -9 of the node leading the timer stream", () => {
  it(
    `while ${LEADS} leads arrive: no follow-up lost, a new leader takes over`,
    async () => {
      const startedAt = Date.now();
      let inFlightAtFault = -1;
      let killedName = "";
      const fault = (async () => {
        // Once timers are pending: the first leads' timers are in the stream.
        await waitFor(async () => (await engine.api.queueStatus()).jobs.scheduled > 0, {
          description: "timers pending in FOLLOWUP_TIMERS",
          timeoutMs: 15_000,
          intervalMs: 100,
        });
        const leader = await streamLeader("FOLLOWUP_TIMERS");
        const node = cluster.servers.find((server) => server.name === leader);
        if (!node) throw new Error(`no node named ${String(leader)} leads FOLLOWUP_TIMERS`);
        killedName = node.name;
        const consumers = [...SCHEDULER_CONSUMERS, ...DISPATCHER_CONSUMERS];
        const before = await ackPending(engine.natsUrl, consumers);
        await node.kill();
        // What the surviving replicas count as unacknowledged once they answer again.
        const after = await waitFor(() => ackPending(survivors(killedName), consumers).then((n) => n + 1), {
          description: "the surviving nodes to report the consumers",
          timeoutMs: 30_000,
          intervalMs: 250,
        });
        inFlightAtFault = Math.max(before, after - 1);
        const next = await waitFor(
          async () => {
            const name = await streamLeader("FOLLOWUP_TIMERS");
            return name !== undefined && name !== killedName && name;
          },
          { description: "another node to lead FOLLOWUP_TIMERS", timeoutMs: 30_000, intervalMs: 250 },
        );
        expect(next).not.toBe(killedName);
        return node;
      })();
      const posted = await postLeads(engine.api, LEADS, { concurrency: 8, spreadMs: SPREAD_MS });
      const killed = await fault;

      const expected = expectedFollowups(posted.accepted, DELAYS_S.length);
      await settle(
        "kill -9 leader of FOLLOWUP_TIMERS (R3)",
        {
          posted,
          expected,
          hook: engine.hook!,
          natsUrl: engine.natsUrl,
          inFlightAtFault,
          startedAt,
          timeoutMs: budget(90_000),
        },
        { killed: killedName, queuedLocally: posted.queuedLocally },
      );
      // The killed node comes back and rejoins.
      await killed.start();
      await waitFor(async () => (await streamLeader("FOLLOWUP_TIMERS")) !== undefined, {
        description: "the cluster to answer with all three nodes",
        timeoutMs: 30_000,
      });
    },
    budget(180_000),
  );
});
