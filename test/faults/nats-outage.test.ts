// Fault 3: nats-server is stopped for 10 s while leads arrive and timers are pending, then started
// again on the same store. lead-intake keeps answering (202, its durable outbox) and drains in
// order when NATS is back; the services reconnect; timers whose TTL ran out during the outage fire
// at the restart (jetstream-facts 8).

import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Engine, startEngine } from "../support/index.js";
import {
  ackPending,
  budget,
  DISPATCHER_CONSUMERS,
  expectedFollowups,
  postLeads,
  SCHEDULER_CONSUMERS,
  scaled,
  settle,
} from "./tally.js";

const LEADS = scaled(100, 600);
const DELAYS_S = [3, 6];
/** The outage itself: how long the server stays down (a fault held for a set time, not a wait). */
const OUTAGE_MS = 10_000;
/** Leads keep arriving from before the outage until after it. */
const SPREAD_MS = 16_000;

let engine: Engine;

beforeAll(async () => {
  engine = await startEngine({ schedules: DELAYS_S.map((d) => `${d}s`).join(",") });
}, 90_000);

afterAll(async () => {
  await engine?.stop();
});

describe("nats-server stopped for 10 s", () => {
  it(
    `while ${LEADS} leads arrive and timers are pending: every lead accepted, no follow-up lost`,
    async () => {
      const startedAt = Date.now();
      const nats = engine.nats!;
      let inFlightAtFault = -1;
      const consumers = [...SCHEDULER_CONSUMERS, ...DISPATCHER_CONSUMERS];
      const outage = (async () => {
        await sleep(3_000);
        const before = await ackPending(engine.natsUrl, consumers);
        await nats.stop();
        await sleep(OUTAGE_MS);
        await nats.start();
        // The consumers' state is on disk: read at once (the services reconnect after about a
        // second), it still holds what was unacknowledged when the server stopped.
        const atStop = await ackPending(engine.natsUrl, consumers);
        inFlightAtFault = Math.max(before, atStop);
      })();
      const posted = await postLeads(engine.api, LEADS, { concurrency: 8, spreadMs: SPREAD_MS });
      await outage;
      expect(inFlightAtFault).toBeGreaterThanOrEqual(0);
      // Fail-open: some leads arrived while NATS was down and went to the outbox.
      expect(posted.queuedLocally).toBeGreaterThan(0);

      const expected = expectedFollowups(posted.accepted, DELAYS_S.length);
      const row = await settle(
        "nats-server stopped 10 s",
        {
          posted,
          expected,
          hook: engine.hook!,
          natsUrl: engine.natsUrl,
          inFlightAtFault,
          startedAt,
          timeoutMs: budget(90_000),
        },
        { queuedLocally: posted.queuedLocally },
      );
      expect(row.lost).toBe(0);
      const metrics = await engine.intake.metrics();
      expect(metrics.value("lead_intake_outbox_drained_total")).toBe(posted.queuedLocally);
      expect(metrics.value("lead_intake_outbox_depth")).toBe(0);
    },
    budget(180_000),
  );
});
