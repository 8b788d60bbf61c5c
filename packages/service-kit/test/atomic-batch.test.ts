import { type NatsServer, startNatsServer } from "@followup/nats-harness";
import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ATOMIC_BATCH_MAX,
  type AtomicBatchRejectedError,
  type AtomicMessage,
  isAtomicBatchRejected,
  publishAtomic,
  publishHeaders,
  stageAtomic,
} from "../src/atomic-batch.js";
import { isNotAnswering, ServerErrorCodes } from "../src/jetstream-errors.js";

// Atomic batches against a real nats-server at sync always, on a stream shaped like the timers':
// one message per subject, per-message TTL, atomic publish allowed.

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
const STREAM = "BATCHED";

beforeAll(async () => {
  server = await startNatsServer({ syncAlways: true });
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: STREAM,
    subjects: ["batched.>"],
    storage: StorageType.File,
    max_msgs_per_subject: 1,
    allow_msg_ttl: true,
    allow_atomic: true,
    allow_direct: true,
    duplicate_window: 120_000_000_000,
  });
  await jsm.streams.add({ name: "PLAIN", subjects: ["plain.>"], storage: StorageType.File });
});

afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
});

let prefixes = 0;
/** `count` timers on subjects of their own, each created only on an empty subject. */
function timers(count: number, prefix = `t${++prefixes}`): AtomicMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    subject: `batched.${prefix}.${i}`,
    data: `timer ${i}`,
    headers: publishHeaders({ msgId: `${prefix}:${i}`, ttl: "3600", expectLastSubjectSequence: 0 }),
  }));
}

async function stored(prefix: string): Promise<number> {
  const info = await jsm.streams.info(STREAM, { subjects_filter: `batched.${prefix}.>` });
  return Object.keys(info.state.subjects ?? {}).length;
}

async function rejection(run: () => Promise<unknown>): Promise<AtomicBatchRejectedError> {
  const err = await run().then(
    () => null,
    (e: unknown) => e,
  );
  expect(isAtomicBatchRejected(err), `expected a rejection, got ${String(err)}`).toBe(true);
  return err as AtomicBatchRejectedError;
}

describe("publishAtomic", () => {
  it("stores a full batch of 1000 and the headers set by hand: TTL, msg id", async () => {
    const batch = timers(ATOMIC_BATCH_MAX, "full");
    const ack = await publishAtomic(js, batch);
    expect(ack).toMatchObject({ stream: STREAM, count: ATOMIC_BATCH_MAX });
    expect(await stored("full")).toBe(ATOMIC_BATCH_MAX);
    const last = await jsm.streams.getMessage(STREAM, { last_by_subj: "batched.full.999" });
    expect(last?.header.get("Nats-TTL")).toBe("3600");
    expect(last?.header.get("Nats-Msg-Id")).toBe("full:999");
    expect(last?.header.get("Nats-Batch-Commit"), "the commit is the batch's last message").toBe("1");
    expect(last?.seq).toBe(ack.seq);
  });

  it("one message on a subject that holds one already: nothing of the batch is stored, the code says why", async () => {
    const [taken] = timers(1, "taken");
    await publishAtomic(js, [taken!]);
    const batch = timers(5, "taken").slice(1);
    batch.splice(2, 0, {
      ...taken!,
      headers: publishHeaders({ msgId: "other", expectLastSubjectSequence: 0 }),
    });
    const err = await rejection(() => publishAtomic(js, batch));
    expect(err.code).toBe(ServerErrorCodes.StreamWrongLastSequence);
    expect(await stored("taken")).toBe(1);
  });

  it("a repeated Nats-Msg-Id rejects the batch; a batch of one rejected is the same error", async () => {
    const first = timers(3, "dup");
    await publishAtomic(js, first);
    const again = timers(3, "dup2");
    again[1] = { ...again[1]!, headers: publishHeaders({ msgId: "dup:1" }) };
    const err = await rejection(() => publishAtomic(js, again));
    expect(err.code).toBe(ServerErrorCodes.AtomicPublishDuplicateMessage);
    expect(await stored("dup2")).toBe(0);

    const single = await rejection(() => publishAtomic(js, timers(1, "dup")));
    expect(single.code).toBe(ServerErrorCodes.StreamWrongLastSequence);
  });

  it("a stream without allow_atomic refuses with its own code", async () => {
    const err = await rejection(() =>
      publishAtomic(js, [
        { subject: "plain.a", data: "a", headers: publishHeaders({}) },
        { subject: "plain.b", data: "b", headers: publishHeaders({}) },
      ]),
    );
    expect(err.code).toBe(ServerErrorCodes.AtomicPublishDisabled);
  });

  it("more than the server's limit, or nothing, is refused before anything is sent", async () => {
    await expect(publishAtomic(js, timers(ATOMIC_BATCH_MAX + 1, "over"))).rejects.toThrow(RangeError);
    await expect(publishAtomic(js, [])).rejects.toThrow(RangeError);
    expect(await stored("over")).toBe(0);
  });

  it("a broker that does not answer is not a rejection", async () => {
    const other = await startNatsServer({ jetstream: false });
    const nc2 = await connect({ servers: other.url });
    try {
      const err = await publishAtomic(jetstream(nc2), timers(3, "nojs"), { timeoutMs: 500 }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isAtomicBatchRejected(err)).toBe(false);
      expect(isNotAnswering(err), String(err)).toBe(true);
    } finally {
      await nc2.close();
      await other.cleanup();
    }
  });
});

describe("stageAtomic", () => {
  it("stores nothing until the commit, then the whole batch", async () => {
    const staged = stageAtomic(js, timers(5, "staged"));
    await nc.flush(); // the four staged messages have reached the server
    expect(await stored("staged")).toBe(0);
    expect(await staged.commit()).toMatchObject({ stream: STREAM, count: 5 });
    expect(await stored("staged")).toBe(5);
    await expect(staged.commit(), "a batch is committed once").rejects.toThrow(/committed or abandoned/);
  });

  it("an abandoned batch stores nothing and frees its place among the stream's 50 in flight", async () => {
    // Sixty batches staged and abandoned, then one more: it commits only if the server forgot the
    // others (with them left staged, it refuses it; the stream holds 50 batches in flight).
    for (let i = 0; i < 60; i++) await stageAtomic(js, timers(3, `abandoned${i}`)).abandon();
    expect(await publishAtomic(js, timers(3, "after"))).toMatchObject({ count: 3 });
    for (let i = 0; i < 60; i++) expect(await stored(`abandoned${i}`)).toBe(0);
    const staged = stageAtomic(js, timers(3, "late"));
    await staged.abandon();
    await expect(staged.commit(), "an abandoned batch is not committed").rejects.toThrow(
      /committed or abandoned/,
    );
    expect(await stored("late")).toBe(0);
  });

  it("left staged, batches fill the stream's places in flight (what abandon is for)", async () => {
    // A stream of its own: the batches left staged here stay for 10 s.
    await jsm.streams.add({ name: "CROWDED", subjects: ["crowded.>"], allow_atomic: true });
    const batch = (name: string) =>
      timers(3, name).map((m) => ({ ...m, subject: m.subject.replace(/^batched\./, "crowded.") }));
    for (let i = 0; i < 60; i++) stageAtomic(js, batch(`left${i}`));
    const err = await rejection(() => publishAtomic(js, batch("crowded")));
    expect(err.code).toBe(ServerErrorCodes.AtomicPublishIncomplete);
    expect((await jsm.streams.info("CROWDED")).state.messages).toBe(0);
  });
});

describe("publishHeaders", () => {
  it("writes each header once, in the order given, as nats-server reads them", () => {
    expect(publishHeaders({ msgId: "acme:L1:1", ttl: "3599", expectLastSubjectSequence: 0 }).toString()).toBe(
      "NATS/1.0\r\nNats-Msg-Id: acme:L1:1\r\nNats-TTL: 3599\r\nNats-Expected-Last-Subject-Sequence: 0\r\n\r\n",
    );
    expect(
      publishHeaders({ expectLastSubjectSequence: 0 }).values("Nats-Expected-Last-Subject-Sequence"),
    ).toEqual(["0"]);
  });
});
