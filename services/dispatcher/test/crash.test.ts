import { type FollowupResult, subjects, topology } from "@followup/contracts";
import { type ManagedProcess, waitFor } from "@followup/nats-harness";
import { type HookRecorder, startHookRecorder } from "@followup/system-tests/support";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProcessRig, publishDue, putLead, readStream, SECRET, startProcessRig } from "./fixtures.js";

const topo = topology();
const STARTED = /"msg":"dispatcher_started"/;
let rig: ProcessRig;
let nc: NatsConnection;
let receiver: HookRecorder;

beforeAll(async () => {
  rig = await startProcessRig();
  nc = rig.nc;
});

afterAll(() => rig?.stop(receiver));

function start(name: string): ManagedProcess {
  return rig.spawn(name, { FOLLOWUP_HOOK_URL: receiver.url });
}

describe("dispatcher crash (kill -9 during a slow hook call)", () => {
  it("redelivers the follow-up after a restart with the same key: one duplicate, dropped by the receiver; none lost", async () => {
    const slowKey = "acme:L-slow:1";
    let slowCalls = 0;
    // The receiver records the slow follow-up on arrival but answers only after a minute: the
    // dispatcher dies between the receiver's acceptance and its own ack.
    receiver = await startHookRecorder({
      secret: SECRET,
      responder: (call) =>
        call.webhookId === slowKey && slowCalls++ === 0 ? { status: 200, delayMs: 60_000 } : { status: 200 },
    });
    const kv = await new Kvm(nc).open(topo.buckets.leads.bucket);
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    for (const lead of ["L-fast-1", "L-fast-2", "L-slow"]) await putLead(kv, "acme", lead);

    const first = start("dispatcher-1");
    await first.waitForLine(STARTED, 20_000);
    await publishDue(js, { tenant: "acme", leadId: "L-fast-1" });
    await publishDue(js, { tenant: "acme", leadId: "L-slow" });
    await publishDue(js, { tenant: "acme", leadId: "L-fast-2" });
    await waitFor(
      async () => {
        const info = await jsm.consumers.info(topo.streams.followups.name, topo.consumers.dispatch.durable);
        return (
          receiver.delivered.size === 3 &&
          receiver.callsFor(slowKey).length === 1 &&
          info.num_ack_pending === 1
        );
      },
      { description: "the fast follow-ups acked and the slow call in flight", timeoutMs: 15_000 },
    );

    first.kill("SIGKILL");
    const killedAt = Date.now();
    expect((await first.waitForExit(10_000)).signal).toBe("SIGKILL");
    const restarted = start("dispatcher-2");
    await restarted.waitForLine(STARTED, 20_000);

    const again = await waitFor(() => receiver.callsFor(slowKey)[1], {
      description: "the slow follow-up to be delivered again after the ack wait",
      timeoutMs: topo.consumers.dispatch.ackWaitMs + 15_000,
    });
    const redeliveredAfterMs = again.receivedAt - killedAt;
    expect(again.headers["webhook-id"]).toBe(slowKey);
    expect(again.verified).toBe(true);
    expect(again.body?.attempt).toBe(2);
    expect(again.duplicate).toBe(true);
    expect(receiver.duplicates).toBe(1);
    expect(receiver.delivered.size).toBe(3);
    expect(receiver.calls).toHaveLength(4);

    const slowResults = await waitFor(
      async () => {
        const r = await readStream<FollowupResult>(
          nc,
          topo.streams.results.name,
          subjects.followupsOfLead("result", "acme", "L-slow"),
        );
        return r.length === 1 && r;
      },
      { description: "the slow follow-up's result" },
    );
    expect(slowResults[0]!.event.data).toMatchObject({ result: "ok", attempt: 2, idempotency_key: slowKey });
    await waitFor(async () => (await jsm.streams.info(topo.streams.followups.name)).state.messages === 0, {
      description: "the work queue to be empty",
    });
    expect((await jsm.streams.info(topo.streams.dead.name)).state.messages).toBe(0);
    console.info(
      `kill -9: redelivered ${redeliveredAfterMs} ms after the kill (ack wait ${topo.consumers.dispatch.ackWaitMs} ms)`,
    );

    restarted.kill("SIGTERM");
    expect((await restarted.waitForExit(30_000)).code).toBe(0);
  }, 90_000);
});
