import { freezeProcess, type NatsServer, startNatsServer } from "@followup/nats-harness";
import {
  AckPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as jetstreamErrors from "../src/jetstream-errors.js";

// Every predicate is asked about the errors a real nats-server gives, not about hand-made ones.

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let kv: KV;

const STREAM = "ERRORS";

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ["errors.>"], allow_direct: true });
  kv = await new Kvm(nc).create("errors_kv");
});

afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
});

/** The error `run` rejects with; fails the test when it resolves. */
async function errorOf(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (err) {
    return err;
  }
  throw new Error("expected the call to fail");
}

// Every predicate the module has, so each error is also checked against all the others.
const predicates = Object.fromEntries(
  Object.entries(jetstreamErrors).filter(
    ([name, value]) => name.startsWith("is") && typeof value === "function",
  ),
) as Record<string, (err: unknown) => boolean>;

/** Which predicates say yes to `err`. */
function matching(err: unknown): string[] {
  return Object.entries(predicates)
    .filter(([, test]) => test(err))
    .map(([name]) => name);
}

describe("JetStream error predicates (real nats-server)", () => {
  it("a KV update from a stale revision and a KV create of an existing key: wrong last sequence", async () => {
    const first = await kv.put("lead", "1");
    await kv.put("lead", "2");
    expect(matching(await errorOf(() => kv.update("lead", "3", first)))).toEqual(["isWrongLastSequence"]);
    expect(matching(await errorOf(() => kv.create("lead", "4")))).toEqual(["isWrongLastSequence"]);
  });

  it("a publish whose expected last subject sequence no longer holds: wrong last sequence", async () => {
    await js.publish("errors.timer.1", "first");
    const err = await errorOf(() =>
      js.publish("errors.timer.1", "second", { expect: { lastSubjectSequence: 0 } }),
    );
    expect(matching(err)).toEqual(["isWrongLastSequence"]);
  });

  it("the info of a missing stream or consumer: not found, each by its own name", async () => {
    expect(matching(await errorOf(() => jsm.streams.info("MISSING")))).toEqual(["isStreamNotFound"]);
    expect(matching(await errorOf(() => jsm.consumers.info(STREAM, "missing")))).toEqual([
      "isConsumerNotFound",
    ]);
  });

  it("deleting a message that is gone already, or never was: message gone", async () => {
    await js.publish("errors.delete.0", "kept");
    const ack = await js.publish("errors.delete.1", "x");
    await js.publish("errors.delete.2", "kept");
    await jsm.streams.deleteMessage(STREAM, ack.seq, false);
    // The server answers with one of two codes, depending on where in the stream the sequence was.
    const e1 = await errorOf(() => jsm.streams.deleteMessage(STREAM, ack.seq, false));
    expect(matching(e1)).toEqual(["isMessageGone"]);
    const last = await js.publish("errors.delete.3", "x");
    await jsm.streams.deleteMessage(STREAM, last.seq, false);
    expect(matching(await errorOf(() => jsm.streams.deleteMessage(STREAM, last.seq, false)))).toEqual([
      "isMessageGone",
    ]);
    expect(matching(await errorOf(() => jsm.streams.deleteMessage(STREAM, 999_999, false)))).toEqual([
      "isMessageGone",
    ]);
  });

  it("a direct batch that finds nothing: no messages (single gets answer null instead)", async () => {
    const batch = await errorOf(async () => {
      const messages = await jsm.direct.getBatch(STREAM, {
        seq: 1,
        next_by_subj: "errors.none.>",
        batch: 10,
      });
      for await (const _ of messages) {
        // Nothing is expected to arrive.
      }
    });
    expect(matching(batch)).toEqual(["isNoMessages"]);
    expect(await jsm.direct.getMessage(STREAM, { seq: 999_999 })).toBeNull();
    expect(await jsm.streams.getMessage(STREAM, { last_by_subj: "errors.none.1" })).toBeNull();
  });

  it("an empty stream's consumer answers next() with null, not an error", async () => {
    await jsm.streams.add({ name: "EMPTY", subjects: ["empty.>"] });
    await jsm.consumers.add("EMPTY", { durable_name: "reader", ack_policy: AckPolicy.Explicit });
    const consumer = await js.consumers.get("EMPTY", "reader");
    expect(await consumer.next({ expires: 1_000 })).toBeNull();
  });

  it("a server without JetStream, and one that does not answer in time: not answering", async () => {
    const plain = await startNatsServer({ jetstream: false });
    const plainNc = await connect({ servers: plain.url });
    try {
      expect(matching(await errorOf(() => jetstreamManager(plainNc)))).toEqual(["isNotAnswering"]);
    } finally {
      await plainNc.close();
      await plain.cleanup();
    }
    const frozen = await startNatsServer();
    const frozenNc = await connect({ servers: frozen.url });
    const frozenJsm = await jetstreamManager(frozenNc, { timeout: 500 });
    // The signal is delivered asynchronously: ask only once every thread is stopped.
    await freezeProcess(frozen.pid);
    try {
      expect(matching(await errorOf(() => frozenJsm.streams.info(STREAM)))).toEqual(["isNotAnswering"]);
    } finally {
      process.kill(frozen.pid, "SIGCONT");
      await frozenNc.close();
      await frozen.cleanup();
    }
  });

  it("says no to other errors", () => {
    expect(matching(new Error("no message found"))).toEqual([]);
    expect(matching(new Error("wrong last sequence: 3"))).toEqual([]);
    expect(matching(undefined)).toEqual([]);
  });
});
