// Fault 5a: the hook drops every connection without answering for 20 s (a receiver that is down),
// then recovers. Every follow-up that came due meanwhile is retried with back-off (connection
// errors are retryable) and delivered once it is back; none becomes a dead letter.

import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Engine, startEngine } from "../support/index.js";
import {
  ackPending,
  budget,
  DISPATCHER_CONSUMERS,
  expectedFollowups,
  postLeads,
  scaled,
  settle,
} from "./tally.js";

const LEADS = scaled(40, 200);
const DELAYS_S = [2, 4];
/** How long the hook refuses: a fault held for a set time, not a wait for something. */
const REFUSAL_MS = 20_000;

let engine: Engine;

beforeAll(async () => {
  engine = await startEngine({
    schedules: DELAYS_S.map((d) => `${d}s`).join(","),
    // Back-off up to 2 s with full jitter: 40 attempts outlast a 20 s outage by far.
    serviceEnv: {
      dispatcher: {
        FOLLOWUP_MAX_ATTEMPTS: "40",
        FOLLOWUP_RETRY_BASE_MS: "200",
        FOLLOWUP_RETRY_MAX_MS: "2000",
      },
    },
  });
}, 90_000);

afterAll(async () => {
  await engine?.stop();
});

describe("a hook that refuses connections for 20 s", () => {
  it(
    `gets all the follow-ups of ${LEADS} leads by retries once it recovers, and no dead letter`,
    async () => {
      const startedAt = Date.now();
      const hook = engine.hook!;
      const inFlightAtFault = await ackPending(engine.natsUrl, DISPATCHER_CONSUMERS);
      hook.respond({ refuse: true });
      const posted = await postLeads(engine.api, LEADS);
      await sleep(Math.max(0, REFUSAL_MS - (Date.now() - startedAt)));
      const refused = hook.calls.length;
      expect(hook.delivered.size).toBe(0);
      hook.respond(() => undefined);

      const expected = expectedFollowups(posted.accepted, DELAYS_S.length);
      await settle(
        "hook refuses connections 20 s",
        {
          posted,
          expected,
          hook,
          natsUrl: engine.natsUrl,
          inFlightAtFault,
          startedAt,
          timeoutMs: budget(60_000),
        },
        { refusedCalls: refused },
      );
      // Each follow-up was tried while the hook was down (more calls than follow-ups), none given up.
      expect(refused).toBeGreaterThan(expected.size);
      const metrics = await engine.services.dispatcher[0]!.metrics();
      expect(metrics.value("followup_retries_total", { reason: "connection" })).toBeGreaterThan(0);
      expect(metrics.value("followup_dead_letters_total")).toBe(0);
      expect((await engine.api.deadLetters()).count).toBe(0);
    },
    budget(120_000),
  );
});
