// Fault 1: the scheduler is killed with -9 in the middle of a burst of qualifying leads and
// started again. What it had pulled and not acknowledged comes back after the consumers' 30 s ack
// wait; its plans (KV create) and message ids keep the redelivery from scheduling anything twice.

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

const LEADS = scaled(200, 1_000);
const DELAYS_S = [4, 8];

let engine: Engine;

beforeAll(async () => {
  engine = await startEngine({ schedules: DELAYS_S.map((d) => `${d}s`).join(",") });
}, 90_000);

afterAll(async () => {
  await engine?.stop();
});

describe("kill -9 of the scheduler during a burst", () => {
  it(
    `loses none of the follow-ups of ${LEADS} qualifying leads`,
    async () => {
      const startedAt = Date.now();
      const scheduler = engine.services.scheduler[0]!;
      let inFlightAtFault = -1;
      let killing: Promise<void> | undefined;
      const posted = await postLeads(engine.api, LEADS, {
        onAccepted: (n) => {
          if (n !== Math.floor(LEADS / 2)) return;
          killing = (async () => {
            await scheduler.kill();
            // Nothing is acknowledged after the kill: what is pending now was in flight then.
            inFlightAtFault = await ackPending(engine.natsUrl, SCHEDULER_CONSUMERS);
          })();
        },
      });
      await killing;
      expect(inFlightAtFault).toBeGreaterThanOrEqual(0);
      await scheduler.start();

      const expected = expectedFollowups(posted.accepted, DELAYS_S.length);
      // Redelivery waits out the 30 s ack wait; then the follow-ups are due at once.
      await settle("kill -9 scheduler mid-burst", {
        posted,
        expected,
        hook: engine.hook!,
        natsUrl: engine.natsUrl,
        inFlightAtFault,
        startedAt,
        timeoutMs: budget(75_000),
      });
    },
    budget(150_000),
  );
});
