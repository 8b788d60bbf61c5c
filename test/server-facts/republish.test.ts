// Pins jetstream-facts.md items 5 (RePublish copies the timer when stored and its marker when it
// expires, with origin headers) and 6 (those copies are core NATS only: no stream captures them).

import { type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import {
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  PubHeaders,
  RetentionPolicy,
} from "@nats-io/jetstream";
import { connect, headers, type NatsConnection, nanos } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headerRecord, holdsFor, isMarker, type Stored } from "./observe.js";

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
});

describe("facts 5 and 6: RePublish of timers and markers", () => {
  it("copies the timer when stored and its marker on expiry to core NATS, and no stream captures them", async () => {
    await jsm.streams.add({
      name: "F5_TIMERS",
      subjects: ["f5.timer.>"],
      allow_msg_ttl: true,
      subject_delete_marker_ttl: nanos(60_000),
      max_msgs_per_subject: 1,
      republish: { src: "f5.timer.>", dest: "f5.due.>" },
    });
    await jsm.streams.add({ name: "F5_DUE", subjects: ["f5.due.>"], retention: RetentionPolicy.Workqueue });

    const copies: Array<Omit<Stored, "storedAtMs" | "seq">> = [];
    const sub = nc.subscribe("f5.due.>", {
      callback: (err, m) => {
        if (!err) copies.push({ subject: m.subject, body: m.string(), headers: headerRecord(m.headers) });
      },
    });
    await nc.flush();

    const h = headers();
    h.set(PubHeaders.MessageTTL, "1s");
    const ack = await jetstream(nc).publish("f5.timer.lead-1", "lead-1 body", { headers: h });

    const copy = await waitFor(() => copies.find((c) => !isMarker(c)), {
      description:
        "FACT 5 CHANGED? the republished copy of the timer itself, at once (1 s) when it is stored",
      timeoutMs: 1_000,
    });
    const changed5 = "FACT 5 CHANGED: the republished timer";
    expect(copy.subject, `${changed5} is not on the mapped destination`).toBe("f5.due.lead-1");
    expect(copy.body, `${changed5} lost its body`).toBe("lead-1 body");
    expect(copy.headers["Nats-Stream"], `${changed5} lacks Nats-Stream`).toBe("F5_TIMERS");
    expect(copy.headers["Nats-Subject"], `${changed5} lacks Nats-Subject`).toBe("f5.timer.lead-1");
    expect(copy.headers["Nats-Sequence"], `${changed5} lacks Nats-Sequence`).toBe(String(ack.seq));
    expect(copy.headers["Nats-Time-Stamp"], `${changed5} lacks Nats-Time-Stamp`).toBeDefined();
    expect(copy.headers["Nats-Last-Sequence"], `${changed5} lacks Nats-Last-Sequence`).toBeDefined();

    const marker = await waitFor(() => copies.find(isMarker), {
      description: "FACT 5 CHANGED? the republished marker of the 1 s timer within 4 s",
      timeoutMs: 4_000,
    });
    const changed5m = "FACT 5 CHANGED: the republished marker";
    expect(marker.subject, `${changed5m} is not on the mapped destination`).toBe("f5.due.lead-1");
    expect(marker.headers["Nats-Marker-Reason"], `${changed5m} reason`).toBe("MaxAge");
    expect(marker.headers["Nats-Stream"], `${changed5m} lacks Nats-Stream`).toBe("F5_TIMERS");
    expect(marker.headers["Nats-Subject"], `${changed5m} lacks Nats-Subject`).toBe("f5.timer.lead-1");
    expect(Number(marker.headers["Nats-Sequence"]), `${changed5m} Nats-Sequence`).toBeGreaterThan(ack.seq);

    await holdsFor(async () => (await jsm.streams.info("F5_DUE")).state.messages === 0, {
      forMs: 1_000,
      description:
        "FACT 6 CHANGED: a stream on the republish destination captured republished copies; " +
        "durable expiry processing could now read them from there instead of a consumer on the timer stream",
    });
    // Control: the same stream does capture an ordinary core publish on that subject space.
    nc.publish("f5.due.control", "control");
    await waitFor(async () => (await jsm.streams.info("F5_DUE")).state.messages === 1, {
      description: "F5_DUE to capture a plain core publish to f5.due.control (control for fact 6)",
      timeoutMs: 2_000,
    });
    sub.unsubscribe();
  });
});
