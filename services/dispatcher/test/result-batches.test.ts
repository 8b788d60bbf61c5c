import { topology } from "@followup/contracts";
import { type NatsServer, startNatsServer } from "@followup/nats-harness";
import { createLogger, provisionTopology } from "@followup/service-kit";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ResultBatches } from "../src/result-batches.js";

const topo = topology();
let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  await provisionTopology(nc, topo);
});

afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
});

function batches(windowMs = 20) {
  const sizes: { size: number; fellBack: boolean }[] = [];
  const publisher = new ResultBatches({
    js: jetstream(nc),
    logger: createLogger({ service: "test", level: "silent" }),
    windowMs,
    onBatch: (size, fellBack) => sizes.push({ size, fellBack }),
  });
  return { publisher, sizes };
}

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
async function stored(lead: string): Promise<number> {
  const info = await (await jetstreamManager(nc)).streams.info(topo.streams.results.name, {
    subjects_filter: `followup.result.acme.${lead}.>`,
  });
  return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}

describe("results in atomic batches (real nats-server)", () => {
  it("gathers results published together into few batches; each caller's promise resolves once it is stored", async () => {
    const { publisher, sizes } = batches();
    await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        publisher.publish(
          `followup.result.acme.L-many.${i + 1}`,
          encode({ i }),
          `L-many:${i + 1}:result:0:1`,
        ),
      ),
    );
    expect(await stored("L-many")).toBe(120);
    expect(sizes.reduce((n, s) => n + s.size, 0)).toBe(120);
    expect(sizes.length).toBeLessThan(10);
    expect(sizes.every((s) => !s.fellBack)).toBe(true);
  });

  it("a batch refused for a result stored before (a redelivery inside the duplicate window) is published one by one: each stored once", async () => {
    const { publisher, sizes } = batches();
    await publisher.publish("followup.result.acme.L-dup.1", encode({}), "L-dup:1:result:0:1");
    await Promise.all(
      [1, 2, 3].map((step) =>
        publisher.publish(`followup.result.acme.L-dup.${step}`, encode({ step }), `L-dup:${step}:result:0:1`),
      ),
    );
    expect(sizes.at(-1)).toEqual({ size: 3, fellBack: true });
    expect(await stored("L-dup")).toBe(3);
  });

  it("rejects its callers when the stream does not answer, so they retry as after any failed publish", async () => {
    const { publisher } = batches(1);
    const attempt = Promise.all(
      [1, 2].map((step) => publisher.publish(`followup.nowhere.acme.L-x.${step}`, encode({}), `x:${step}`)),
    );
    await expect(attempt).rejects.toThrow();
  });
});
