import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, type NatsServer, startNatsServer } from "../src/index.js";

let server: NatsServer | undefined;

afterEach(async () => {
  await server?.cleanup();
  server = undefined;
});

/** Puts `count` messages into a fresh stream TEST on `server`. */
async function fillStream(target: NatsServer, count: number): Promise<void> {
  const nc = await connect({ servers: target.url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "TEST", subjects: ["test.>"] });
    const js = jetstream(nc);
    for (let i = 1; i <= count; i++) await js.publish(`test.${i}`, `message ${i}`);
  } finally {
    await nc.close();
  }
}

async function storedBodies(target: NatsServer): Promise<string[]> {
  const nc = await connect({ servers: target.url });
  try {
    const consumer = await jetstream(nc).consumers.get("TEST");
    const batch = await consumer.fetch({ max_messages: 100, expires: 1_000 });
    const bodies: string[] = [];
    for await (const m of batch) {
      bodies.push(m.string());
      if (m.info.pending === 0) break;
    }
    return bodies;
  } finally {
    await nc.close();
  }
}

describe("startNatsServer", () => {
  it("starts a JetStream server on loopback that takes publishes and serves consumers", async () => {
    server = await startNatsServer({ name: "basic" });
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    expect(server.running).toBe(true);
    await fillStream(server, 3);
    expect(await storedBodies(server)).toEqual(["message 1", "message 2", "message 3"]);
  });

  it("keeps a stream's messages across stop and restart on the same port", async () => {
    server = await startNatsServer();
    await fillStream(server, 3);
    const { port, pid } = server;
    await server.stop();
    expect(server.running).toBe(false);
    expect(() => process.kill(pid, 0), "the stopped server's process is gone").toThrow();
    await server.restart();
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(pid);
    expect(await storedBodies(server)).toEqual(["message 1", "message 2", "message 3"]);
  });

  it("keeps them across kill -9 and restart too", async () => {
    server = await startNatsServer();
    await fillStream(server, 3);
    await server.kill();
    expect(server.running).toBe(false);
    await server.start();
    expect(await storedBodies(server)).toEqual(["message 1", "message 2", "message 3"]);
    expect(server.logs()).toMatch(/ended; starting again/);
  });

  it("cleanup leaves no process and no temp dir, and can be called twice", async () => {
    const doomed = await startNatsServer();
    const { pid, storeDir } = doomed;
    expect(existsSync(storeDir)).toBe(true);
    await doomed.cleanup();
    await doomed.cleanup();
    expect(() => process.kill(pid, 0), "nats-server still running after cleanup").toThrow();
    expect(existsSync(dirname(storeDir)), "temp dir still there after cleanup").toBe(false);
    await expect(doomed.start()).rejects.toThrow(/cleaned up/);
  });

  it("applies sync_interval: always when asked, and passes extra config through", async () => {
    const monitorPort = await freePort();
    server = await startNatsServer({ syncAlways: true, extraConfig: `http: "127.0.0.1:${monitorPort}"` });
    const varz = (await (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json()) as {
      jetstream: { config: { sync_always?: boolean } };
    };
    expect(varz.jetstream.config.sync_always).toBe(true);
  });

  it("fails with the server's own words when it cannot start", async () => {
    await expect(startNatsServer({ extraConfig: "cluster { listen: nonsense:::: }" })).rejects.toThrow(
      /did not become ready[\s\S]*exited/,
    );
  });
});
