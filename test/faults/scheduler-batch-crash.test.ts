// Fault 1b: the scheduler is killed with -9 while it writes a backlog of lead.scored in atomic
// batches (its plans' batch and its timers' batches, SCHEDULER_BATCH_SIZE at a time) and started
// again. Nothing of a batch is acknowledged before its plans and timers are committed, so the
// batch comes back after the 30 s ack wait; plans that exist send it down the per-lead path,
// which stores the missing timers and leaves the stored ones alone.

import { waitFor } from "@followup/nats-harness";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Engine, startEngine } from "../support/index.js";
import {
  ackPending,
  budget,
  expectedFollowups,
  postLeads,
  SCHEDULER_CONSUMERS,
  scaled,
  settle,
} from "./tally.js";

const LEADS = scaled(1_000, 5_000);
const DELAYS_S = [4, 8];

let engine: Engine;
let probe: NatsConnection;

beforeAll(async () => {
  engine = await startEngine({ schedules: DELAYS_S.map((d) => `${d}s`).join(",") });
  probe = await connect({ servers: engine.natsUrl.split(","), name: "fault-probe", ...engine.as() });
}, 90_000);

afterAll(async () => {
  await probe?.close();
  await engine?.stop();
});

async function stored(stream: string): Promise<number> {
  const jsm = await jetstreamManager(probe, { timeout: 5_000 });
  return (await jsm.streams.info(stream)).state.messages;
}

describe("kill -9 of the scheduler while it writes batches", () => {
  it(
    `loses none of the follow-ups of a backlog of ${LEADS} qualifying leads, and stores none twice`,
    async () => {
      const startedAt = Date.now();
      const scheduler = engine.services.scheduler[0]!;
      // The backlog: lead.scored piles up while the scheduler is stopped.
      await scheduler.sigterm();
      const posted = await postLeads(engine.api, LEADS, { concurrency: 32 });
      const expected = expectedFollowups(posted.accepted, DELAYS_S.length);

      // Not awaited: it logs that it started after its consumers run, and may be done by then.
      const starting = scheduler.start("logged").catch(() => undefined);
      // Killed once a plans' batch is committed (more than the lone first lead's plan): its
      // timers' batch is being written, or about to be.
      await waitFor(async () => (await stored("KV_followup_plans")) > 1, {
        description: "a batch of plans of the backlog",
        timeoutMs: 60_000,
        intervalMs: 5,
      });
      await scheduler.kill();
      await starting;
      const timersAtKill = await stored("FOLLOWUP_TIMERS");
      const plansAtKill = await stored("KV_followup_plans");
      const inFlightAtFault = await ackPending(engine.natsUrl, SCHEDULER_CONSUMERS);
      expect(timersAtKill, "the kill came after the whole backlog was scheduled").toBeLessThan(expected.size);
      expect(plansAtKill, "no plans' batch was committed before the kill").toBeGreaterThan(1);
      await scheduler.start();

      await settle(
        "kill -9 scheduler while writing batches",
        {
          posted,
          expected,
          hook: engine.hook!,
          natsUrl: engine.natsUrl,
          inFlightAtFault,
          startedAt,
          timeoutMs: budget(90_000),
        },
        { timersAtKill, plansAtKill },
      );
      // Each follow-up's timer stored once, and its marker: a timer stored twice (a batch
      // written again) would have taken a sequence more. Deletions take none.
      const jsm = await jetstreamManager(probe, { timeout: 5_000 });
      const { state } = await jsm.streams.info("FOLLOWUP_TIMERS");
      expect(state.last_seq, "messages ever stored in FOLLOWUP_TIMERS").toBe(2 * expected.size);
    },
    budget(180_000),
  );
});
