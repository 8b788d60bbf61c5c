// nats-server stopped and restarted on the same store while timers are pending: the timers
// expire at the restart (jetstream-facts 8) and every step still fires, once.

import { waitFor } from "@followup/nats-harness";
import { expect, it } from "vitest";
import { brokerPerTest, readPlan, timersOfLead, watchMarkers } from "./fixtures/broker.js";
import { lead, submitLead } from "./fixtures/leads.js";
import { runScheduler } from "./fixtures/scheduler.js";

const broker = brokerPerTest({ connect: { maxReconnectAttempts: -1, reconnectTimeWait: 250 } });

it("nats-server stopped and restarted while timers are pending: every step fires, once", async () => {
  const scheduler = await runScheduler(broker.server.url);
  broker.cleanups.push(scheduler.stop);
  const queue = await watchMarkers(broker.nc);
  broker.cleanups.push(queue.stop);
  const fixtures = [lead(), lead()];
  for (const fixture of fixtures) await submitLead(broker.nc, fixture);
  for (const fixture of fixtures) {
    // One timer per lead at a time: the 4 s one is stored when the 2 s one fires.
    await waitFor(async () => (await timersOfLead(broker.jsm, fixture)) === 1, {
      description: "the first timer (2s) to be stored",
    });
  }

  await broker.server.stop();
  // Down past every due time: there is nothing to poll while the server is stopped.
  const lastDueAt = Math.max(...fixtures.map((f) => f.createdAt.getTime())) + 4_000;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, lastDueAt + 500 - Date.now())));
  await broker.server.start();

  await waitFor(() => queue.seen.length >= 4, {
    description: "all four timers to fire after the restart",
    timeoutMs: 20_000,
  });
  const end = Date.now() + 1_500;
  while (Date.now() < end) {
    expect(queue.seen.length, "a timer fired twice").toBe(4);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const keys = queue.seen.map((d) => `${d.leadId}:${d.step}`).sort();
  expect(keys).toEqual(fixtures.flatMap((f) => [`${f.leadId}:1`, `${f.leadId}:2`]).sort());
  // Expired while the server was down: stored at the restart, after due_at (the floor-rounded
  // TTL makes a marker at most a second early).
  for (const marker of queue.seen) expect(marker.storedAtMs).toBeGreaterThanOrEqual(marker.dueAtMs - 1_000);
  for (const fixture of fixtures) {
    expect((await readPlan(broker.nc, fixture))?.steps.map((st) => st.state)).toEqual(["pending", "pending"]);
  }
}, 60_000);
