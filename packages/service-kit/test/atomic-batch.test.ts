import { type NatsServer, startNatsServer } from "@followup/nats-harness";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ATOMIC_BATCH_MAX, AtomicBatchRejected, isBatchRejected, publishAtomic } from "../src/index.js";

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "BATCHED", subjects: ["batched.>"], allow_atomic: true });
});

afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
});

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
function withId(id: string) {
  const h = headers();
  h.set("Nats-Msg-Id", id);
  return h;
}
async function count(filter: string): Promise<number> {
  const info = await (await jetstreamManager(nc)).streams.info("BATCHED", { subjects_filter: filter });
  return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}

describe("publishAtomic (real nats-server)", () => {
  it("stores every message of a batch together, with their headers", async () => {
    const ack = await publishAtomic(
      nc,
      [1, 2, 3].map((n) => ({ subject: `batched.a.${n}`, data: encode({ n }), headers: withId(`a-${n}`) })),
    );
    expect(ack.count).toBe(3);
    expect(ack.stream).toBe("BATCHED");
    expect(await count("batched.a.>")).toBe(3);
    const stored = await (await jetstreamManager(nc)).streams.getMessage("BATCHED", {
      last_by_subj: "batched.a.2",
    });
    expect(stored?.header.get("Nats-Msg-Id")).toBe("a-2");
    expect(stored?.json()).toEqual({ n: 2 });
  });

  it("refuses the whole batch when one message repeats a stored Nats-Msg-Id (10201): nothing of it is stored", async () => {
    await publishAtomic(nc, [{ subject: "batched.b.1", data: encode({}), headers: withId("b-1") }]);
    const attempt = publishAtomic(
      nc,
      [1, 2, 3].map((n) => ({ subject: `batched.b.${n}`, data: encode({ n }), headers: withId(`b-${n}`) })),
    );
    const err = await attempt.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtomicBatchRejected);
    expect(isBatchRejected(err, 10201)).toBe(true);
    expect((err as AtomicBatchRejected).message).toMatch(/10201/);
    expect(await count("batched.b.>")).toBe(1);
  });

  it("refuses an empty batch and one over the server's limit before sending anything", async () => {
    await expect(publishAtomic(nc, [])).rejects.toThrow(/1 to 1000 messages \(got 0\)/);
    const many = Array.from({ length: ATOMIC_BATCH_MAX + 1 }, () => ({
      subject: "batched.c",
      data: encode({}),
    }));
    await expect(publishAtomic(nc, many)).rejects.toThrow(/got 1001/);
    expect(await count("batched.c")).toBe(0);
  });
});
