// The scheduler as real processes: killed with SIGKILL between timer and expiry, and two copies
// sharing the durable consumers. Each follow-up still becomes due exactly once, never early.

import { type ManagedProcess, waitFor } from "@followup/nats-harness";
import { describe, expect, it } from "vitest";
import { MARKER_REASON_HEADER } from "../src/markers.js";
import {
  brokerPerTest,
  latenessSummary,
  readPlan,
  timerMessage,
  timersOfLead,
  watchDueQueue,
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

async function dueQueue() {
  const queue = await watchDueQueue(broker.nc);
  broker.cleanups.push(queue.stop);
  return queue;
}

async function timersStored(fixture: LeadFixture): Promise<void> {
  await waitFor(async () => (await timersOfLead(broker.jsm, fixture)) === 2, {
    description: `the two timers of ${fixture.leadId} (2s,4s) to be stored`,
  });
}

describe("scheduler processes", () => {
  it("kill -9 between timer and expiry, restarted after the due time: every follow-up becomes due, once", async () => {
    const queue = await dueQueue();
    const first = await startSchedulerProcess("scheduler (to be killed)");
    const fixture = lead();
    await submitLead(broker.nc, fixture);
    await timersStored(fixture);

    first.kill("SIGKILL");
    const exit = await first.waitForExit();
    expect(exit.signal).toBe("SIGKILL");
    // Both timers expire with no scheduler running: their markers wait in the stream.
    await waitFor(
      async () => {
        const markers = await Promise.all([1, 2].map((step) => timerMessage(broker.jsm, fixture, step)));
        return markers.every((m) => m?.header.get(MARKER_REASON_HEADER) === "MaxAge");
      },
      { description: "both markers to be stored while the scheduler is down", timeoutMs: 10_000 },
    );
    const lastDueAt = fixture.createdAt.getTime() + 4_000;
    await waitFor(() => Date.now() > lastDueAt + 250, { description: "the last due time to pass" });
    expect(queue.of(fixture.leadId)).toHaveLength(0);

    await startSchedulerProcess("scheduler (restarted)");
    const dues = await waitFor(() => queue.of(fixture.leadId).length >= 2 && queue.of(fixture.leadId), {
      description: "both follow-ups to become due after the restart",
      timeoutMs: 15_000,
    });
    for (const due of dues) expect(due.storedAtMs).toBeGreaterThanOrEqual(due.dueAtMs);
    expect(dues.map((d) => d.step).sort()).toEqual([1, 2]);
    await waitFor(async () => (await timersOfLead(broker.jsm, fixture)) === 0, {
      description: "the markers deleted",
    });
    await nothingMoreFor(1_500, () => queue.of(fixture.leadId).length, 2);
    expect((await readPlan(broker.nc, fixture))?.steps.map((st) => st.state)).toEqual(["due", "due"]);
  }, 60_000);

  it("two processes on one stream: each follow-up due exactly once, never early; SIGTERM exits 0", async () => {
    const queue = await dueQueue();
    const copies = await Promise.all([
      startSchedulerProcess("scheduler A"),
      startSchedulerProcess("scheduler B"),
    ]);
    const fixtures = Array.from({ length: 10 }, () => lead());
    await Promise.all(fixtures.map((fixture) => submitLead(broker.nc, fixture)));

    await waitFor(() => queue.seen.length >= 20, {
      description: "20 follow-ups (10 leads x 2 steps) to become due",
      timeoutMs: 15_000,
    });
    await nothingMoreFor(1_500, () => queue.seen.length, 20);
    const keys = queue.seen.map((d) => `${d.leadId}:${d.step}`).sort();
    expect(keys).toEqual(fixtures.flatMap((f) => [`${f.leadId}:1`, `${f.leadId}:2`]).sort());
    for (const due of queue.seen) {
      expect(due.storedAtMs, `${due.leadId}:${due.step} early`).toBeGreaterThanOrEqual(due.dueAtMs);
      expect(due.receivedAtMs - due.dueAtMs, `${due.leadId}:${due.step} late`).toBeLessThan(1_500);
    }
    const lateness = queue.seen.map((d) => d.storedAtMs - d.dueAtMs);
    console.info(`due publish lateness vs due_at (two processes): ${latenessSummary(lateness)}`);

    for (const copy of copies) copy.kill("SIGTERM");
    const exits = await Promise.all(copies.map((copy) => copy.waitForExit(20_000)));
    expect(exits.map((e) => e.code)).toEqual([0, 0]);
    const logs = copies.flatMap((copy) => processLogs(copy.output()));
    expect(logs.filter((l) => l.msg === "followups_enqueued")).toHaveLength(10);
    expect(logs.filter((l) => l.msg === "followup_due")).toHaveLength(20);
    expect(logs.filter((l) => l.msg === "shutdown_complete")).toHaveLength(2);
  }, 60_000);
});

/** A bounded negative check: the count stays at `expected` for `forMs`. */
async function nothingMoreFor(forMs: number, count: () => number, expected: number): Promise<void> {
  const end = Date.now() + forMs;
  while (Date.now() < end) {
    expect(count(), "a follow-up became due more than once").toBe(expected);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(count()).toBe(expected);
}
