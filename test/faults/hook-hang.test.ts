// Fault 6: the hook hangs: it takes each call and never answers. The dispatcher's calls time out
// (FOLLOWUP_HOOK_TIMEOUT_MS) and are retried with back-off; the calls in flight never exceed
// HOOK_CONCURRENCY (counted exactly at the hook, and by the dispatcher's own gauge); once the
// hook answers again everything is delivered. (The consumer's num_ack_pending is reported, not
// bounded by DISPATCH_CONCURRENCY: a message nak'd with a back-off delay stays ack-pending on
// the server until it is redelivered.)

import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Engine, type HookRecorder, startEngine } from "../support/index.js";
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
const DISPATCH_CONCURRENCY = 16;
const HOOK_CONCURRENCY = 8;
/** How long the hook hangs: a fault held for a set time. */
const HANG_MS = 10_000;

let engine: Engine;
let hook: HookRecorder;
/** While true the hook takes each call and never answers. */
let hanging = false;

beforeAll(async () => {
  engine = await startEngine({
    schedules: DELAYS_S.map((d) => `${d}s`).join(","),
    serviceEnv: {
      dispatcher: {
        FOLLOWUP_HOOK_TIMEOUT_MS: "1000",
        DISPATCH_CONCURRENCY: String(DISPATCH_CONCURRENCY),
        HOOK_CONCURRENCY: String(HOOK_CONCURRENCY),
        FOLLOWUP_MAX_ATTEMPTS: "40",
        FOLLOWUP_RETRY_BASE_MS: "200",
        FOLLOWUP_RETRY_MAX_MS: "1000",
      },
    },
  });
  hook = engine.hook!;
  hook.respond(() => (hanging ? { hang: true } : undefined));
}, 90_000);

afterAll(async () => {
  await engine?.stop();
});

describe("a hook that hangs", () => {
  it(
    `times out and retries, keeps in-flight work within its bounds, then delivers all of ${LEADS} leads' follow-ups`,
    async () => {
      const startedAt = Date.now();
      const dispatcher = engine.services.dispatcher[0]!;
      const inFlightAtFault = await ackPending(engine.natsUrl, DISPATCHER_CONSUMERS);
      hanging = true;
      const posted = await postLeads(engine.api, LEADS);

      // Sample the bounds while the hook hangs.
      let maxHeld = 0;
      let maxCalls = 0;
      while (Date.now() - startedAt < HANG_MS) {
        const [held, metrics] = await Promise.all([
          ackPending(engine.natsUrl, DISPATCHER_CONSUMERS),
          dispatcher.metrics(),
        ]);
        maxHeld = Math.max(maxHeld, held);
        maxCalls = Math.max(maxCalls, metrics.value("followup_deliveries_in_flight"));
        await sleep(100);
      }
      hanging = false;
      expect(hook.delivered.size).toBe(0);
      expect(hook.hung).toBe(hook.calls.length);
      expect(hook.hung).toBeGreaterThan(0);
      expect(hook.maxOpen).toBeGreaterThan(0);
      expect(hook.maxOpen).toBeLessThanOrEqual(HOOK_CONCURRENCY);
      expect(maxCalls).toBeGreaterThan(0);
      expect(maxCalls).toBeLessThanOrEqual(HOOK_CONCURRENCY);

      const expected = expectedFollowups(posted.accepted, DELAYS_S.length);
      await settle(
        "hook hangs 10 s (calls time out at 1 s)",
        {
          posted,
          expected,
          hook,
          natsUrl: engine.natsUrl,
          inFlightAtFault,
          startedAt,
          timeoutMs: budget(60_000),
        },
        {
          hungCalls: hook.hung,
          maxOpenAtHook: hook.maxOpen,
          maxGaugeInFlight: maxCalls,
          maxConsumerAckPending: maxHeld,
        },
      );
      const metrics = await dispatcher.metrics();
      expect(metrics.value("followup_retries_total", { reason: "timeout" })).toBeGreaterThan(0);
      expect(metrics.value("followup_dead_letters_total")).toBe(0);
    },
    budget(120_000),
  );
});
