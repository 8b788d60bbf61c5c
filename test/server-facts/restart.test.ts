// Pins jetstream-facts.md item 8: timers whose TTL runs out while nats-server is stopped produce
// their markers when it starts again, so no follow-up is lost to downtime.

import { type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import { jetstream, jetstreamManager, PubHeaders } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection, nanos } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMarker, untilWallClock, watchStream } from "./observe.js";

const TTL_MS = 2_000;
const TIMERS = ["f8.timer.1", "f8.timer.2", "f8.timer.3", "f8.timer.4", "f8.timer.5"];

let server: NatsServer;
let nc: NatsConnection | undefined;

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
});

describe("fact 8: timers that expire while the server is down", () => {
  it("produce their markers when the server starts again", async () => {
    const first = await connect({ servers: server.url });
    const jsm = await jetstreamManager(first);
    await jsm.streams.add({
      name: "F8",
      subjects: ["f8.timer.>"],
      allow_msg_ttl: true,
      subject_delete_marker_ttl: nanos(60_000),
      max_msgs_per_subject: 1,
    });
    const h = headers();
    h.set(PubHeaders.MessageTTL, `${TTL_MS / 1000}s`);
    const publishStarted = Date.now();
    const js = jetstream(first);
    await Promise.all(TIMERS.map((subject) => js.publish(subject, "", { headers: h })));
    expect((await jsm.streams.info("F8")).state.messages, "all five timers are stored").toBe(5);
    await first.close();
    await server.stop();
    const stoppedAt = Date.now();
    expect(
      stoppedAt - publishStarted,
      "precondition: the server must be down before the first timer can expire (this machine is too slow)",
    ).toBeLessThan(TTL_MS - 500);

    // Nothing to poll while the server is down: let every TTL run out, with a margin.
    await untilWallClock(publishStarted + TTL_MS + 1_000);
    const restartBegan = Date.now();
    await server.start();

    nc = await connect({ servers: server.url });
    const watch = await watchStream(nc, "F8");
    try {
      const markers = await waitFor(
        () => {
          const found = watch.seen.filter(isMarker);
          return found.length === TIMERS.length ? found : undefined;
        },
        {
          description:
            "FACT 8 CHANGED: the markers of five timers that expired while the server was down, within 5 s of restart",
          timeoutMs: 5_000,
        },
      );
      expect(markers.map((m) => m.subject).sort(), "one marker per timer").toEqual(TIMERS);
      for (const m of markers) {
        expect(
          m.storedAtMs,
          `FACT 8 CHANGED: the marker on ${m.subject} is stamped before the restart began`,
        ).toBeGreaterThanOrEqual(restartBegan - 5);
      }
    } finally {
      await watch.stop();
    }
  });
});
