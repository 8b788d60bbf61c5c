import { type FollowupResult, topology } from "@followup/contracts";
import { type ManagedProcess, waitFor } from "@followup/nats-harness";
import { type HookRecorder, startHookRecorder } from "@followup/system-tests/support";
import { type JetStreamClient, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ProcessRig, publishDue, putLead, readStream, SECRET, startProcessRig } from "./fixtures.js";

const topo = topology();
const STARTED = /"msg":"dispatcher_started"/;
let rig: ProcessRig;
let nc: NatsConnection;
let js: JetStreamClient;
let kv: KV;
let receiver: HookRecorder;

beforeEach(async () => {
  rig = await startProcessRig();
  nc = rig.nc;
  js = jetstream(nc);
  kv = await new Kvm(nc).open(topo.buckets.leads.bucket);
});

afterEach(() => rig?.stop(receiver));

function start(name: string, env: Record<string, string> = {}): ManagedProcess {
  return rig.spawn(name, { FOLLOWUP_HOOK_URL: receiver.url, ...env });
}

async function publishBurst(count: number, prefix: string): Promise<string[]> {
  const leads = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  await Promise.all(leads.map((lead) => putLead(kv, "acme", lead)));
  await Promise.all(leads.map((lead) => publishDue(js, { tenant: "acme", leadId: lead, delayS: 60 })));
  return leads;
}

const executed = (p: ManagedProcess) =>
  p.output().filter((line) => line.includes('"msg":"followup_executed"'));

async function results() {
  return readStream<FollowupResult>(nc, topo.streams.results.name, "followup.result.>");
}

describe("dispatcher processes (real nats-server, real hook, child processes)", () => {
  it("two processes share the work: every follow-up delivered exactly once", async () => {
    receiver = await startHookRecorder({ secret: SECRET, responder: () => ({ status: 200, delayMs: 20 }) });
    const a = start("dispatcher-a");
    const b = start("dispatcher-b");
    const [startedA] = await Promise.all([a.waitForLine(STARTED, 20_000), b.waitForLine(STARTED, 20_000)]);
    const health = `http://127.0.0.1:${(JSON.parse(startedA) as { port: number }).port}`;
    const ready = await fetch(`${health}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      ok: true,
      data: { checks: { nats: { ok: true }, consumer: { ok: true } } },
    });

    const leads = await publishBurst(150, "P");
    await waitFor(() => receiver.delivered.size === leads.length, {
      description: "every follow-up of the burst to be accepted",
      timeoutMs: 20_000,
    });
    // Bounded negative check: no late second call arrives.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(receiver.calls).toHaveLength(leads.length);
    expect(receiver.duplicates).toBe(0);
    expect(receiver.calls.every((call) => call.verified && call.body?.attempt === 1)).toBe(true);
    expect(executed(a).length).toBeGreaterThan(0);
    expect(executed(b).length).toBeGreaterThan(0);
    expect(executed(a).length + executed(b).length).toBe(leads.length);
    const stored = await results();
    expect(stored).toHaveLength(leads.length);
    expect(stored.every((r) => r.event.data.result === "ok")).toBe(true);
    const metrics = await (await fetch(`${health}/metrics`)).text();
    const jobs = /followup_jobs_total\{[^}]*strategy="60s"[^}]*result="ok"[^}]*\} (\d+)/.exec(metrics);
    expect(Number(jobs?.[1])).toBe(executed(a).length);
    expect(metrics).toContain("followup_delivery_lateness_seconds_bucket");

    a.kill("SIGTERM");
    b.kill("SIGTERM");
    expect((await a.waitForExit(30_000)).code).toBe(0);
    expect((await b.waitForExit(30_000)).code).toBe(0);
  }, 60_000);

  it("SIGTERM during a burst: exits 0 with every message settled; nothing lost, nothing delivered twice", async () => {
    receiver = await startHookRecorder({ secret: SECRET, responder: () => ({ status: 200, delayMs: 100 }) });
    const env = { HOOK_CONCURRENCY: "8", DISPATCH_CONCURRENCY: "16" };
    const a = start("dispatcher-a", env);
    await a.waitForLine(STARTED, 20_000);
    const leads = await publishBurst(200, "S");
    await waitFor(() => receiver.delivered.size >= 30, {
      description: "the burst to be under way",
      timeoutMs: 20_000,
    });

    const signalledAt = Date.now();
    a.kill("SIGTERM");
    const exit = await a.waitForExit(30_000);
    const shutdownMs = Date.now() - signalledAt;
    expect(exit.code).toBe(0);
    await a.waitForLine(/"msg":"shutdown_complete"/, 1_000);
    // Every message it held was acked or handed back (nak'd, so still pending on the consumer
    // until the next process takes it): none is left to an ack-wait timeout.
    const stopped = JSON.parse(await a.waitForLine(/"msg":"dispatcher_stopped"/, 1_000)) as {
      handed_back: number;
    };
    const jsm = await jetstreamManager(nc);
    const info = await jsm.consumers.info(topo.streams.followups.name, topo.consumers.dispatch.durable);
    expect(info.num_ack_pending).toBe(stopped.handed_back);
    const deliveredBeforeStop = receiver.delivered.size;
    expect(deliveredBeforeStop).toBeLessThan(leads.length);
    // Every call the stopping process started was answered and recorded as a result.
    expect((await results()).length).toBe(receiver.calls.length);

    const b = start("dispatcher-b", env);
    await waitFor(() => receiver.delivered.size === leads.length, {
      description: "the rest of the burst to be delivered by the next process",
      // Well inside the 30 s ack wait: nothing the stopped process held has to time out first.
      timeoutMs: 20_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(receiver.calls).toHaveLength(leads.length);
    expect(receiver.duplicates).toBe(0);
    expect(await results()).toHaveLength(leads.length);
    console.info(
      `SIGTERM: ${deliveredBeforeStop} delivered before the stop, ${stopped.handed_back} handed back, shutdown took ${shutdownMs} ms, ${leads.length - deliveredBeforeStop} by the next process`,
    );

    b.kill("SIGTERM");
    expect((await b.waitForExit(30_000)).code).toBe(0);
  }, 90_000);
});
