import { type NatsServer, startNatsServer } from "@followup/nats-harness";
import { jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BatchedKvReads, readLead } from "../src/index.js";

let server: NatsServer;
let nc: NatsConnection;
let kv: KV;
let reads: BatchedKvReads;
const batches: number[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  kv = await new Kvm(nc).create("reads_batched", { history: 2 });
  reads = new BatchedKvReads(await jetstreamManager(nc), "reads_batched", (keys) => batches.push(keys));
});

afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
});

describe("BatchedKvReads (real nats-server)", () => {
  it("reads what kv.get reads, many keys in one request", async () => {
    for (let i = 0; i < 300; i++) await kv.put(`acme.L${i}`, JSON.stringify({ n: i }));
    await kv.put("acme.L7", JSON.stringify({ n: 7, again: true }));
    batches.length = 0;
    const got = await Promise.all(Array.from({ length: 300 }, (_, i) => reads.get(`acme.L${i}`)));
    // 300 keys asked for in one turn: two requests (at most 256 keys each), not 300.
    expect(batches).toEqual([256, 44]);
    for (let i = 0; i < 300; i++) {
      const direct = await kv.get(`acme.L${i}`);
      expect(got[i]!.operation).toBe("PUT");
      expect(got[i]!.revision).toBe(direct!.revision);
      expect(got[i]!.json()).toEqual(direct!.json());
    }
    expect(got[7]!.json()).toEqual({ n: 7, again: true });
  });

  it("answers null for a key never written, and a delete or purge as such, in the same batch", async () => {
    await kv.put("acme.gone", "{}");
    await kv.delete("acme.gone");
    await kv.put("acme.purged", "{}");
    await kv.purge("acme.purged");
    await kv.put("acme.kept", '{"k":1}');
    batches.length = 0;
    const [never, gone, purged, kept] = await Promise.all(
      ["acme.never", "acme.gone", "acme.purged", "acme.kept"].map((key) => reads.get(key)),
    );
    expect(batches).toEqual([4]);
    expect(never).toBeNull();
    expect(gone!.operation).toBe("DEL");
    expect(purged!.operation).toBe("PURGE");
    expect(kept!.json()).toEqual({ k: 1 });
  });

  it("answers null for every key when none was ever written (the server's no-results)", async () => {
    expect(await Promise.all([reads.get("acme.none1"), reads.get("acme.none2")])).toEqual([null, null]);
  });

  it("gives one key asked for twice in a turn the same entry, read once", async () => {
    await kv.put("acme.twice", '{"t":2}');
    batches.length = 0;
    const [a, b] = await Promise.all([reads.get("acme.twice"), reads.get("acme.twice")]);
    expect(batches).toEqual([1]);
    expect(a).toBe(b);
  });

  it("serves readLead like the bucket does (absent, found)", async () => {
    expect(await readLead(reads, { tenant: "acme", leadId: "nobody" })).toEqual({ status: "absent" });
    const read = await readLead(reads, { tenant: "acme", leadId: "L1" });
    // L1 holds {n: 1}, which is no StoredLead: the reader names what breaks the contract.
    expect(read.status).toBe("invalid");
  });

  it("rejects every get of a request that fails", async () => {
    const closed = await connect({ servers: server.url });
    const broken = new BatchedKvReads(await jetstreamManager(closed), "reads_batched");
    await closed.close();
    await expect(Promise.all([broken.get("acme.L1"), broken.get("acme.L2")])).rejects.toThrow();
  });
});
