// Fault 2: the dispatcher is killed with -9 while it delivers (the hook takes 300 ms per call, so
// calls are in flight) and started again at once. The new process delivers what is queued; what
// the dead one held comes back after the consumer's 30 s ack wait. A call that reached the hook
// but whose ack died with the process is made again: a duplicate, which the receiver drops by
// webhook-id; there can be no more of those than deliveries in flight at the kill.

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

const LEADS = scaled(100, 500);
const DELAYS_S = [2, 4];
const HOOK_DELAY_MS = 300;

let engine: Engine;

beforeAll(async () => {
  engine = await startEngine({
    schedules: DELAYS_S.map((d) => `${d}s`).join(","),
    serviceEnv: { dispatcher: { DISPATCH_CONCURRENCY: "32", HOOK_CONCURRENCY: "32" } },
  });
  engine.hook!.respond({ delayMs: HOOK_DELAY_MS });
}, 90_000);

afterAll(async () => {
  await engine?.stop();
});

describe("kill -9 of the dispatcher during deliveries", () => {
  it(
    `loses none of the follow-ups of ${LEADS} leads; duplicates stay within the calls in flight`,
    async () => {
      const startedAt = Date.now();
      const hook = engine.hook!;
      const dispatcher = engine.services.dispatcher[0]!;
      const posted = await postLeads(engine.api, LEADS);
      const expected = expectedFollowups(posted.accepted, DELAYS_S.length);

      await waitFor(() => hook.delivered.size >= expected.size / 3, {
        description: "a third of the follow-ups delivered",
        timeoutMs: budget(30_000),
        intervalMs: 20,
      });
      const callsAtKill = hook.calls.length;
      await dispatcher.kill();
      const inFlightAtFault = await ackPending(engine.natsUrl, DISPATCHER_CONSUMERS);
      expect(inFlightAtFault).toBeGreaterThan(0);
      await dispatcher.start();

      await settle(
        "kill -9 dispatcher mid-delivery",
        {
          posted,
          expected,
          hook,
          natsUrl: engine.natsUrl,
          inFlightAtFault,
          startedAt,
          timeoutMs: budget(75_000),
        },
        { hookCallsBeforeKill: callsAtKill },
      );
    },
    budget(150_000),
  );
});
