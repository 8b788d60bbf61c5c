// Pins jetstream-facts.md item 7: purging a timer's subject leaves no marker, so a purged timer
// never fires. That is how follow-ups are cancelled.

import { type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import { type JetStreamManager, jetstream, jetstreamManager, PubHeaders } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection, nanos } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { holdsFor, isMarker, watchStream } from "./observe.js";

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

describe("fact 7: purge and markers", () => {
  it("places no marker for a purged timer, while an untouched one expires as usual", async () => {
    await jsm.streams.add({
      name: "F7",
      subjects: ["f7.timer.>"],
      allow_msg_ttl: true,
      subject_delete_marker_ttl: nanos(60_000),
      max_msgs_per_subject: 1,
    });
    const watch = await watchStream(nc, "F7");
    try {
      const js = jetstream(nc);
      const h = headers();
      h.set(PubHeaders.MessageTTL, "1s");
      await js.publish("f7.timer.cancelled", "", { headers: h });
      await js.publish("f7.timer.kept", "", { headers: h });
      const purge = await jsm.streams.purge("F7", { filter: "f7.timer.cancelled" });
      const purgedAt = Date.now();
      expect(purge.purged, "the purge removed the cancelled timer").toBe(1);

      // Control: the timer published alongside it does expire, so markers are being produced.
      await waitFor(() => watch.seen.some((m) => isMarker(m) && m.subject === "f7.timer.kept"), {
        description: "the untouched 1 s timer's marker within 4 s (control for fact 7)",
        timeoutMs: 4_000,
      });
      await holdsFor(
        async () =>
          !watch.seen.some((m) => isMarker(m) && m.subject === "f7.timer.cancelled") &&
          (await jsm.streams.getMessage("F7", { last_by_subj: "f7.timer.cancelled" })) === null,
        {
          forMs: purgedAt + 3_000 - Date.now(),
          description:
            "FACT 7 CHANGED: purging a timer's subject now leaves a marker (or a message) on it; " +
            "cancelled follow-ups would fire. Check ADR-43 purge markers and filter them out.",
        },
      );
    } finally {
      await watch.stop();
    }
  });
});
