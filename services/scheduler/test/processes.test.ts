// The scheduler as real processes: killed with SIGKILL between timer and expiry, and two copies
// sharing the durable consumers. Each step's timer is stored and fires exactly once, on time.

import { MARKER_REASON_HEADER } from "@followup/contracts";
import { type ManagedProcess, waitFor } from "@followup/nats-harness";
import { describe, expect, it } from "vitest";
import {
  brokerPerTest,
  latenessSummary,
  readPlan,
  timerMessage,
  timersOfLead,
  watchMarkers,
} from "./fixtures/broker.js";
import { type LeadFixture, lead, submitLead } from "./fixtures/leads.js";
import { processLogs, spawnScheduler } from "./fixtures/scheduler.js";

const STARTUP_MS = 30_000;

// Provisioned here too, so the test's own view of the queue exists before any scheduler runs.
const broker = brokerPerTest({ provision: true });

async function startSchedulerProcess(name: string): Promise<ManagedProcess> {
  const proc = spawnScheduler(name, { NATS_URL: broker.server.url });
  broker.cleanups.push(() => proc.cleanup());
  await proc.waitForLine((line) => line.includes('"msg":"scheduler_started"'), STARTUP_MS);
  return proc;
}

async function markers() {
  const queue = await watchMarkers(broker.nc);
  broker.cleanups.push(queue.stop);
  return queue;
}

/** The lead's first timer (2 s); the second (4 s) is stored when it fires, as the dispatcher does. */
async function timersStored(fixture: LeadFixture): Promise<void> {
  await waitFor(async () => (await timersOfLead(broker.jsm, fixture)) === 1, {
    description: `the first timer of ${fixture.leadId} (2s) to be stored`,
  });
}

describe("scheduler processes", () => {
  it("kill -9 between timer and expiry: the timers fire without it, and a restarted scheduler stores none again", async () => {
    const queue = await markers();
    const first = await startSchedulerProcess("scheduler (to be killed)");
    const fixture = lead();
    await submitLead(broker.nc, fixture);
    await timersStored(fixture);

    first.kill("SIGKILL");
    const exit = await first.waitForExit();
    expect(exit.signal).toBe("SIGKILL");
    // Both timers expire with no scheduler running (the second stored when the first fired).
    await waitFor(
      async () => {
        const markers = await Promise.all([1, 2].map((step) => timerMessage(broker.jsm, fixture, step)));
        return markers.every((m) => m?.header.get(MARKER_REASON_HEADER) === "MaxAge");
      },
      { description: "both markers to be stored while the scheduler is down", timeoutMs: 10_000 },
    );
    // The firing path does not go through the scheduler: the markers are there to be delivered.
    const dues = await waitFor(() => queue.of(fixture.leadId).length >= 2 && queue.of(fixture.leadId), {
      description: "both markers to reach the dispatcher's durable with no scheduler running",
      timeoutMs: 15_000,
    });
    for (const due of dues) expect(due.storedAtMs).toBeGreaterThanOrEqual(due.dueAtMs - 1_000);
    expect(dues.map((d) => d.step).sort()).toEqual([1, 2]);
    const before = await Promise.all([1, 2].map((step) => timerMessage(broker.jsm, fixture, step)));

    await startSchedulerProcess("scheduler (restarted)");
    await nothingMoreFor(1_500, () => queue.of(fixture.leadId).length, 2);
    const after = await Promise.all([1, 2].map((step) => timerMessage(broker.jsm, fixture, step)));
    expect(
      after.map((m) => m?.seq),
      "the markers stay; nothing stored over them",
    ).toEqual(before.map((m) => m?.seq));
    expect(await timersOfLead(broker.jsm, fixture)).toBe(2);
    expect((await readPlan(broker.nc, fixture))?.steps.map((st) => st.state)).toEqual(["pending", "pending"]);
  }, 60_000);

  it("two processes on one stream: each step's timer stored and fired exactly once, on time; SIGTERM exits 0", async () => {
    const queue = await markers();
    const copies = await Promise.all([
      startSchedulerProcess("scheduler A"),
      startSchedulerProcess("scheduler B"),
    ]);
    const fixtures = Array.from({ length: 10 }, () => lead());
    await Promise.all(fixtures.map((fixture) => submitLead(broker.nc, fixture)));

    await waitFor(() => queue.seen.length >= 20, {
      description: "20 timers (10 leads x 2 steps) to fire",
      timeoutMs: 15_000,
    });
    await nothingMoreFor(1_500, () => queue.seen.length, 20);
    const keys = queue.seen.map((d) => `${d.leadId}:${d.step}`).sort();
    expect(keys).toEqual(fixtures.flatMap((f) => [`${f.leadId}:1`, `${f.leadId}:2`]).sort());
    for (const due of queue.seen) {
      expect(due.storedAtMs, `${due.leadId}:${due.step} early`).toBeGreaterThanOrEqual(due.dueAtMs - 1_000);
      expect(due.receivedAtMs - due.dueAtMs, `${due.leadId}:${due.step} late`).toBeLessThan(1_500);
    }
    const lateness = queue.seen.map((d) => d.storedAtMs - d.dueAtMs);
    console.info(`marker lateness vs due_at (two processes): ${latenessSummary(lateness)}`);

    for (const copy of copies) copy.kill("SIGTERM");
    const exits = await Promise.all(copies.map((copy) => copy.waitForExit(20_000)));
    expect(exits.map((e) => e.code)).toEqual([0, 0]);
    const logs = copies.flatMap((copy) => processLogs(copy.output()));
    expect(logs.filter((l) => l.msg === "followups_enqueued")).toHaveLength(10);
    expect(logs.filter((l) => l.msg === "shutdown_complete")).toHaveLength(2);
  }, 60_000);
});

/** A bounded negative check: the count stays at `expected` for `forMs`. */
async function nothingMoreFor(forMs: number, count: () => number, expected: number): Promise<void> {
  const end = Date.now() + forMs;
  while (Date.now() < end) {
    expect(count(), "a timer fired more than once").toBe(expected);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(count()).toBe(expected);
}
