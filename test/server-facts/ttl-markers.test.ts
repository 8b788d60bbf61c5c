// Pins jetstream-facts.md items 2 (when a Nats-TTL is honoured as published) and 4 (what the
// marker left by an expired timer looks like). The scheduler's timers depend on both.

import { type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import { type JetStreamManager, jetstream, jetstreamManager, PubHeaders } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection, nanos } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { goDurationMs, holdsFor, isMarker, watchStream } from "./observe.js";

const MARKER_TTL_MS = 60_000;

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

async function addTimerStream(name: string, subject: string, onePerSubject: boolean): Promise<void> {
  await jsm.streams.add({
    name,
    subjects: [subject],
    allow_msg_ttl: true,
    subject_delete_marker_ttl: nanos(MARKER_TTL_MS),
    ...(onePerSubject ? { max_msgs_per_subject: 1 } : {}),
  });
}

/** Publishes a timer with the TTL header set by name, as the scheduler does. */
async function publishTimer(subject: string, ttl: string, body = "", extra: Record<string, string> = {}) {
  const h = headers();
  h.set(PubHeaders.MessageTTL, ttl);
  for (const [k, v] of Object.entries(extra)) h.set(k, v);
  return jetstream(nc).publish(subject, body, { headers: h });
}

/** A stored Nats-TTL value ("60" or a Go duration such as "1s") in milliseconds. */
function ttlMs(value: string | undefined): number {
  if (value === undefined) return Number.NaN;
  return /^\d+$/.test(value) ? Number(value) * 1000 : goDurationMs(value);
}

describe("fact 2: a Nats-TTL below subject_delete_marker_ttl", () => {
  it("is kept as published on a stream with max_msgs_per_subject: 1 (1 s timer expires after ~1 s)", async () => {
    await addTimerStream("F2_ONE", "f2one.>", true);
    expect(PubHeaders.MessageTTL, "fact 1: the TTL header is Nats-TTL").toBe("Nats-TTL");
    const ack = await publishTimer("f2one.lead-1", "1s");
    const timer = await jsm.streams.getMessage("F2_ONE", { seq: ack.seq });
    expect(
      timer?.header.get("Nats-TTL"),
      "FACT 2 CHANGED: with max_msgs_per_subject: 1 the server no longer stores the Nats-TTL as published",
    ).toBe("1s");

    const marker = await waitFor(
      async () => {
        const last = await jsm.streams.getMessage("F2_ONE", { last_by_subj: "f2one.lead-1" });
        return last && last.seq !== ack.seq ? last : undefined;
      },
      {
        description:
          "FACT 2 CHANGED: a 1 s timer on a max_msgs_per_subject: 1 stream to expire and leave its marker within 4 s",
        timeoutMs: 4_000,
      },
    );
    const lifetimeMs = marker.time.getTime() - timer!.time.getTime();
    expect(
      lifetimeMs,
      `FACT 2 CHANGED: a 1 s timer lived ${lifetimeMs} ms instead of about 1 s on a max_msgs_per_subject: 1 stream`,
    ).toBeGreaterThanOrEqual(900);
    expect(lifetimeMs).toBeLessThan(2_500);
  });

  it("is raised to subject_delete_marker_ttl on a stream without max_msgs_per_subject: 1", async () => {
    await addTimerStream("F2_MANY", "f2many.>", false);
    const ack = await publishTimer("f2many.lead-1", "1s");
    const stored = await jsm.streams.getMessage("F2_MANY", { seq: ack.seq });
    const storedTtl = stored?.header.get("Nats-TTL");
    expect(
      ttlMs(storedTtl),
      `FACT 2 CHANGED: without max_msgs_per_subject: 1 the server stored Nats-TTL ${storedTtl}, ` +
        `not the marker TTL (${MARKER_TTL_MS / 1000} s). If 1 s is now kept, timers may share subjects again.`,
    ).toBe(MARKER_TTL_MS);

    const publishedAt = stored!.time.getTime();
    await holdsFor(
      async () =>
        (await jsm.streams.getMessage("F2_MANY", { last_by_subj: "f2many.lead-1" }))?.seq === ack.seq,
      {
        forMs: publishedAt + 3_000 - Date.now(),
        description:
          "FACT 2 CHANGED: a 1 s timer on a stream without max_msgs_per_subject: 1 expired within 3 s; " +
          "its TTL was not raised to subject_delete_marker_ttl",
      },
    );
  });
});

describe("fact 4: the marker an expired timer leaves", () => {
  it("is an empty message on the same subject with MaxAge reason, the marker TTL and a subject rollup", async () => {
    await addTimerStream("F4", "f4.>", true);
    const watch = await watchStream(nc, "F4");
    try {
      const subject = "f4.tenant-a.lead-7.step-2";
      await publishTimer(subject, "1s", '{"channel":"email"}', { "Followup-Step": "2" });
      const marker = await waitFor(() => watch.seen.find(isMarker), {
        description:
          "FACT 4 CHANGED? the expired timer's marker (a message with Nats-Marker-Reason) within 4 s",
        timeoutMs: 4_000,
      });
      const changed = "FACT 4 CHANGED: the marker";
      expect(marker.subject, `${changed} is not on the timer's subject`).toBe(subject);
      expect(marker.body, `${changed} has a body`).toBe("");
      expect(marker.headers["Nats-Marker-Reason"], `${changed} reason is not MaxAge`).toBe("MaxAge");
      expect(marker.headers["Nats-Rollup"], `${changed} does not roll up the subject`).toBe("sub");
      expect(
        goDurationMs(marker.headers["Nats-TTL"] ?? "missing"),
        `${changed} Nats-TTL (${marker.headers["Nats-TTL"]}) is not subject_delete_marker_ttl as a Go duration`,
      ).toBe(MARKER_TTL_MS);
      expect(
        marker.headers["Followup-Step"],
        `${changed} now carries the expired message's headers; the design may no longer need subject parsing`,
      ).toBeUndefined();
      const info = await jsm.streams.info("F4");
      expect(info.state.messages, `${changed} did not replace the timer (rollup)`).toBe(1);
    } finally {
      await watch.stop();
    }
  });
});
