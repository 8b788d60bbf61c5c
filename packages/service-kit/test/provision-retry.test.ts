import { Writable } from "node:stream";
import { topology } from "@followup/contracts";
import { freezeProcess, type NatsServer, startNatsServer } from "@followup/nats-harness";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger, provisionTopology } from "../src/index.js";

// A JetStream that does not answer in time at start-up (a cluster still electing stream leaders,
// here a server frozen with SIGSTOP) used to fail the service's start; provisioning now asks again.

let server: NatsServer | undefined;
let nc: NatsConnection | undefined;
let frozen = false;

afterEach(async () => {
  if (frozen && server) process.kill(server.pid, "SIGCONT");
  frozen = false;
  await nc?.close();
  await server?.cleanup();
});

function capturingLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, logger: createLogger({ service: "test", destination }) };
}

describe("provisionTopology when JetStream does not answer in time", () => {
  it("asks again and succeeds once it answers, logging each retry", async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    const { lines, logger } = capturingLogger();
    await freezeProcess(server.pid);
    frozen = true;
    const thaw = setTimeout(() => {
      if (server) process.kill(server.pid, "SIGCONT");
      frozen = false;
    }, 6_000);
    try {
      await provisionTopology(nc, topology(), { logger });
    } finally {
      clearTimeout(thaw);
    }
    expect(lines.join("")).toContain("topology_provisioning_retrying");
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info("FOLLOWUP_TIMERS")).config.allow_msg_ttl).toBe(true);
  }, 30_000);

  it("gives up after its attempts with the error", async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    await freezeProcess(server.pid);
    frozen = true;
    await expect(provisionTopology(nc, topology(), { attempts: 1 })).rejects.toThrow(/timeout/i);
  }, 30_000);
});
