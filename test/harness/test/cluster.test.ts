import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsCluster, startNatsCluster, waitFor } from "../src/index.js";

let cluster: NatsCluster;

beforeAll(async () => {
  cluster = await startNatsCluster({ size: 3 });
});

afterAll(async () => {
  await cluster?.cleanup();
});

describe("startNatsCluster", () => {
  it("elects a leader; an R3 stream takes publishes and survives losing its leader's node", async () => {
    expect(cluster.servers).toHaveLength(3);
    expect(cluster.urls.split(",")).toEqual(cluster.servers.map((s) => s.url));
    const nc = await connect({ servers: cluster.urls.split(",") });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.add({ name: "R3", subjects: ["r3.>"], num_replicas: 3 });
      expect(info.cluster?.replicas).toHaveLength(2);
      const js = jetstream(nc);
      await js.publish("r3.before", "before");

      const leaderName = (await jsm.streams.info("R3")).cluster?.leader;
      const leader = cluster.servers.find((s) => s.name === leaderName);
      expect(leader, `stream leader ${leaderName} is one of the nodes`).toBeDefined();
      await leader!.kill();

      await waitFor(() => js.publish("r3.after", "after", { timeout: 1_000 }), {
        description: "the R3 stream to take a publish with one node down (new leader elected)",
        timeoutMs: 20_000,
        intervalMs: 250,
      });
      const state = (await jsm.streams.info("R3")).state;
      expect(state.messages).toBeGreaterThanOrEqual(2);

      await leader!.restart();
      await waitFor(
        async () => {
          const replicas = (await jsm.streams.info("R3")).cluster?.replicas ?? [];
          return replicas.length === 2 && replicas.every((r) => r.current);
        },
        {
          description: "the restarted node to catch up as a current replica",
          timeoutMs: 20_000,
          intervalMs: 250,
        },
      );
    } finally {
      await nc.close();
    }
  });
});
