// Scaling by running more copies: two schedulers and three dispatchers share their durable
// consumers on one nats-server. 200 qualifying leads (400 follow-ups) go in through the API;
// every follow-up reaches the hook exactly once, never early, and the copies split the work.

import { monitorEventLoopDelay } from "node:perf_hooks";
import { waitFor } from "@followup/nats-harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  contractViolations,
  describeSummary,
  type Engine,
  type EventRecorder,
  REFERENCE_LEADS,
  recordEvents,
  startEngine,
} from "../support/index.js";

const LEADS = 200;
const DELAYS_S = [2, 4];
const FOLLOWUPS = LEADS * DELAYS_S.length;
/** Leads posted at once: enough to spread 200 over about a second. */
const POSTING_CONCURRENCY = 16;

let engine: Engine;
let events: EventRecorder;

beforeAll(async () => {
  engine = await startEngine({
    copies: { scheduler: 2, dispatcher: 3 },
    schedules: DELAYS_S.map((d) => `${d}s`).join(","),
  });
  events = await recordEvents(engine.natsUrl, undefined, engine.as("tail"));
}, 120_000);

afterAll(async () => {
  await events?.stop();
  await engine?.stop();
});

describe("two schedulers and three dispatchers on one NATS", () => {
  it(`deliver every follow-up of ${LEADS} qualifying leads exactly once, never early`, async () => {
    // The hook answers from this process: its event-loop lag is part of the lateness measured here.
    const loopLag = monitorEventLoopDelay({ resolution: 10 });
    loopLag.enable();
    const started = Date.now();
    const leadIds: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: POSTING_CONCURRENCY }, async () => {
        while (next < LEADS) {
          next++;
          const accepted = await engine.api.postLead(REFERENCE_LEADS.high);
          expect(accepted.pred_prob).toBeGreaterThanOrEqual(0.7);
          leadIds.push(accepted.lead_id);
        }
      }),
    );
    const postedMs = Date.now() - started;
    expect(new Set(leadIds).size).toBe(LEADS);

    const hook = engine.hook!;
    await hook.waitForDelivered(FOLLOWUPS, postedMs + DELAYS_S.at(-1)! * 1000 + 20_000);
    const deliveredMs = Date.now() - started;
    loopLag.disable();
    // Every call the hook saw is an attempt some dispatcher counted (a late duplicate included).
    const attemptsCounted = async () => {
      const dispatched = await Promise.all(engine.services.dispatcher.map((d) => d.metrics()));
      return dispatched.reduce((sum, m) => sum + m.value("followup_jobs_total"), 0);
    };
    await waitFor(async () => (await attemptsCounted()) >= hook.calls.length, {
      description: "the dispatchers to count every call the hook received",
    });

    const expected = leadIds.flatMap((id) => DELAYS_S.map((_, i) => `acme:${id}:${i + 1}`)).sort();
    // Delivered exactly once: the receiver accepted every follow-up, each under its webhook-id once.
    expect([...hook.delivered.keys()].sort()).toEqual(expected);
    expect(hook.unverified).toBe(0);
    // Split, never duplicated: no delivery (attempt) of a follow-up reached the hook twice, so no
    // two copies worked on the same message. A repeat is only ever a later attempt (a retry or a
    // redelivery after a slow acknowledgement on a loaded machine); the receiver dropped it.
    const repeated = expected.filter((id) => hook.callsFor(id).length > 1);
    for (const id of repeated) {
      const attempts = hook.callsFor(id).map((call) => call.body?.attempt);
      expect(new Set(attempts).size, `${id} attempts ${attempts.join(",")}`).toBe(attempts.length);
    }
    expect(await attemptsCounted()).toBe(hook.calls.length);
    if (repeated.length > 0) {
      const metrics = await Promise.all(engine.services.dispatcher.map((d) => d.metrics()));
      const sum = (name: string, labels: Record<string, string>) =>
        metrics.reduce((total, m) => total + m.value(name, labels), 0);
      console.warn(
        `scaling: ${repeated.length} follow-ups reached the hook more than once (${hook.duplicates} dropped as duplicates); ` +
          `dispatcher retries ${JSON.stringify(Object.fromEntries(["timeout", "connection", "status_5xx"].map((r) => [r, sum("followup_retries_total", { reason: r })])))}, ` +
          `released ${JSON.stringify(Object.fromEntries(["broker", "shutdown", "not_due"].map((r) => [r, sum("dispatcher_released_total", { reason: r })])))}, ` +
          `result publish failures ${engine.services.dispatcher.reduce((n, d) => n + d.logsNamed("result_publish_failed_retrying").length, 0)}`,
      );
    }

    const lateness = [...hook.delivered.values()].map(
      (call) => call.receivedAt - Date.parse(call.body!.due_at!),
    );
    const early = [...hook.delivered.values()].filter(
      (call) => call.receivedAt < Date.parse(call.body!.due_at!),
    );
    expect(early.map((call) => call.webhookId)).toEqual([]);

    const perScheduler = await Promise.all(
      // The schedulers store the timers; the dispatchers deliver them (they consume the markers).
      engine.services.scheduler.map(async (s) => (await s.metrics()).value("followups_scheduled_total")),
    );
    const perDispatcher = await Promise.all(
      engine.services.dispatcher.map(async (d) =>
        (await d.metrics()).value("followup_jobs_total", { result: "ok" }),
      ),
    );
    expect(perScheduler.reduce((a, b) => a + b, 0)).toBe(FOLLOWUPS);
    // A repeat answered 2xx (and dropped by the receiver) counts as ok too.
    const delivered2xx = hook.calls.filter((call) => call.status >= 200 && call.status < 300).length;
    expect(perDispatcher.reduce((a, b) => a + b, 0)).toBe(FOLLOWUPS + (delivered2xx - FOLLOWUPS));
    // Shared durable consumers split the work: more than one copy of each did some.
    expect(perScheduler.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(perDispatcher.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(contractViolations(events.messages)).toEqual([]);

    console.info(
      `scaling: ${LEADS} leads posted in ${postedMs} ms; ${FOLLOWUPS} follow-ups delivered ${deliveredMs} ms after the first post; ` +
        `scheduled per scheduler ${JSON.stringify(perScheduler)}, delivered per dispatcher ${JSON.stringify(perDispatcher)}`,
    );
    console.info(describeSummary("scaling delivery lateness (hook receive - due_at)", lateness));
    const dispatcherLate = await Promise.all(
      engine.services.dispatcher.map(async (d) => {
        const m = await d.metrics();
        const within = m.value("followup_delivery_lateness_seconds_bucket", { le: "0.25" });
        return `${within}/${m.value("followup_delivery_lateness_seconds_count")}`;
      }),
    );
    console.info(
      `scaling: delivered within 250 ms of due_at per dispatcher ${dispatcherLate.join(", ")}; ` +
        `test process event-loop lag p99 ${Math.round(loopLag.percentile(99) / 1e6)} ms, max ${Math.round(loopLag.max / 1e6)} ms`,
    );
    // Lateness here measures throughput on a shared 2-core machine (every process of the run
    // competes for it): printed above, bounded only against a stuck copy.
    expect(Math.max(...lateness)).toBeLessThan(15_000);
  }, 90_000);
});
