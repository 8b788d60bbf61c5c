// Fault 5b: the hook fails (503) for longer than the retries last. Every follow-up becomes a dead
// letter with its last error; once the hook is back, the dead letters are replayed through
// lead-intake's /ops/dead-letters/replay and delivered, each once.

import { waitFor } from "@followup/nats-harness";
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

const LEADS = scaled(30, 200);
const DELAYS_S = [2, 4];

let engine: Engine;

beforeAll(async () => {
  engine = await startEngine({
    schedules: DELAYS_S.map((d) => `${d}s`).join(","),
    // Three attempts within about a second: the outage outlasts them.
    serviceEnv: {
      dispatcher: { FOLLOWUP_MAX_ATTEMPTS: "3", FOLLOWUP_RETRY_BASE_MS: "100", FOLLOWUP_RETRY_MAX_MS: "300" },
    },
  });
}, 90_000);

afterAll(async () => {
  await engine?.stop();
});

describe("a hook that fails for longer than the retries last", () => {
  it(
    `turns the follow-ups of ${LEADS} leads into dead letters, and a replay delivers every one`,
    async () => {
      const startedAt = Date.now();
      const hook = engine.hook!;
      const inFlightAtFault = await ackPending(engine.natsUrl, DISPATCHER_CONSUMERS);
      hook.respond({ status: 503 });
      const posted = await postLeads(engine.api, LEADS);
      const expected = expectedFollowups(posted.accepted, DELAYS_S.length);

      const letters = await waitFor(
        async () => {
          const dead = await engine.api.deadLetters({ limit: 1000 });
          return dead.count >= expected.size && dead;
        },
        { description: `${expected.size} dead letters`, timeoutMs: budget(40_000), intervalMs: 250 },
      );
      expect(letters.count).toBe(expected.size);
      expect(hook.delivered.size).toBe(0);
      const failedCalls = hook.calls.length;

      hook.respond(() => undefined);
      let replayed = 0;
      for (let round = 0; round < 10; round++) {
        const result = await engine.api.replayDeadLetters();
        replayed += result.replayed;
        if (!result.more) break;
      }
      expect(replayed).toBe(expected.size);

      await settle(
        "hook fails past the retries: dead letters, replayed",
        {
          posted,
          expected,
          hook,
          natsUrl: engine.natsUrl,
          inFlightAtFault,
          startedAt,
          timeoutMs: budget(60_000),
        },
        { deadLetters: letters.count, failedCalls, replayed },
      );
      expect((await engine.api.deadLetters()).count).toBe(0);
      const metrics = await engine.services.dispatcher[0]!.metrics();
      expect(metrics.value("followup_dead_letters_total", { reason: "exhausted" })).toBe(expected.size);
    },
    budget(120_000),
  );
});
