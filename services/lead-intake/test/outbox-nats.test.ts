import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  decodeEvent,
  encodeEvent,
  LeadAccepted,
  LeadView,
  leadKey,
  QueueStatus,
  subjects,
} from "@followup/contracts";
import { freezeProcess, startNatsServer, waitFor } from "@followup/nats-harness";
import type { JetStreamManager } from "@nats-io/jetstream";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { afterEach, describe, expect, it } from "vitest";
import { LeadOutbox } from "../src/outbox/outbox.js";
import { ACME_KEY, ALEX, BOB, GLOBEX_KEY, type Intake, jsonHeaders, startIntake } from "./fixtures.js";

/**
 * The fail-open outbox against a real nats-server that goes away (stopped), stalls (SIGSTOP: the
 * connection stays up but nothing is acknowledged) and comes back.
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp(options: { maxLeads?: number; batchSize?: number; env?: Record<string, string> } = {}) {
  const server = await startNatsServer();
  const dir = mkdtempSync(join(tmpdir(), "outbox-nats-"));
  cleanups.push(async () => {
    await server.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const intake = await startIntake({
    server,
    env: { PUBLISH_TIMEOUT_MS: "500", ...options.env },
    outbox: {
      dir,
      retryMs: 200,
      ...(options.maxLeads !== undefined ? { maxLeads: options.maxLeads } : {}),
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    },
  });
  cleanups.push(() => intake.close());
  return { server, dir, intake };
}

function postLead(intake: Intake, body: object = ALEX) {
  return intake.app.inject({ method: "POST", url: "/v1/lead", headers: jsonHeaders(), payload: body });
}

/** Lead ids of the lead.scored events on LEADS, in stream order. */
async function scoredInStreamOrder(jsm: JetStreamManager): Promise<string[]> {
  const ids: string[] = [];
  const last = (await jsm.streams.info("LEADS")).state.last_seq;
  for (let seq = 1; seq <= last; seq++) {
    const message = await jsm.streams.getMessage("LEADS", { seq }).catch(() => null);
    if (message?.subject.startsWith("lead.scored.")) {
      ids.push(decodeEvent("lead.scored.v1", message.data).data.lead_id);
    }
  }
  return ids;
}

async function metric(intake: Intake, name: string): Promise<number> {
  const text = await intake.registry.metrics();
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "m").exec(text);
  if (!match) throw new Error(`metric ${name} not found`);
  return Number(match[1]);
}

function entryFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith(".json"));
}

describe("lead-intake with NATS stopped", () => {
  it("accepts leads into the outbox (202, queued: local), shows them, then drains them in order", async () => {
    // Batches of 2: five leads drain in three round trips, still in acceptance order.
    const { server, dir, intake } = await setUp({ batchSize: 2 });
    const first = await postLead(intake);
    expect(first.statusCode).toBe(200);
    expect(first.headers["x-lead-queued"]).toBe("published");
    expect(first.json().data.queued).toBeUndefined();

    await server.stop();
    await waitFor(() => !intake.broker.available, { description: "the broker to notice the disconnect" });
    const queued: string[] = [];
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      const res = await postLead(intake, i % 2 ? BOB : ALEX);
      // NATS is known to be down: no waiting for a publish timeout.
      expect(Date.now() - started).toBeLessThan(1000);
      expect(res.statusCode).toBe(202);
      expect(res.headers["x-lead-queued"]).toBe("local");
      const data = LeadAccepted.parse(res.json().data);
      expect(data.queued).toBe("local");
      expect(Object.keys(res.json().data).sort()).toEqual(
        ["intent", "lead_id", "pred_prob", "queued", "score", "sentiment", "urgency"].sort(),
      );
      queued.push(data.lead_id);
    }
    expect(entryFiles(dir)).toHaveLength(5);

    // The degraded state, in every place an operator looks.
    const queue = QueueStatus.parse(
      (await intake.app.inject({ url: "/ops/followup/queue", headers: { "x-api-key": ACME_KEY } })).json(),
    );
    expect(queue).toMatchObject({ enabled: false, outbox: { queued: 5, capacity: 10_000, draining: false } });
    const ready = (await intake.app.inject("/readyz")).json();
    expect(ready.data.checks.outbox).toEqual({
      ok: true,
      detail: "5 of 10000 leads queued locally; waiting for NATS",
    });
    expect(await metric(intake, "lead_intake_outbox_depth")).toBe(5);
    expect(await metric(intake, "lead_intake_degraded")).toBe(1);
    expect(await metric(intake, "lead_intake_outbox_queued_total")).toBe(5);

    // A queued lead is visible to its tenant (from the outbox), to nobody else.
    const view = await intake.app.inject({
      url: `/v1/lead/${queued[0]}`,
      headers: { "x-api-key": ACME_KEY },
    });
    expect(view.statusCode).toBe(200);
    expect(view.headers["x-lead-queued"]).toBe("local");
    const lead = LeadView.parse(view.json().data);
    expect(lead).toMatchObject({ lead: { lead_id: queued[0], name: ALEX.name }, qualified: null });
    expect(lead.timeline.map((entry) => entry.event)).toEqual(["scored"]);
    const foreign = await intake.app.inject({
      url: `/v1/lead/${queued[0]}`,
      headers: { "x-api-key": GLOBEX_KEY },
    });
    expect(foreign.statusCode).toBe(503); // as for any lead while NATS is down: never its data
    expect(foreign.body).not.toContain(ALEX.name);
    // An outcome needs the stored lead: retry later, not "not found".
    const outcome = await intake.app.inject({
      method: "POST",
      url: `/v1/lead/${queued[0]}/outcome`,
      headers: jsonHeaders(),
      payload: { outcome: "booked" },
    });
    expect(outcome.statusCode).toBe(503);
    expect(outcome.headers["retry-after"]).toBe("5");
    expect(outcome.json().error.message).toContain("local outbox");

    await server.start();
    await waitFor(() => intake.outbox?.status().queued === 0, {
      description: "the outbox to drain",
      timeoutMs: 20_000,
    });
    const jsm = intake.jsm!;
    expect(await scoredInStreamOrder(jsm)).toEqual([first.json().data.lead_id, ...queued]);
    const kv = await new Kvm(intake.nc!).open("leads");
    for (const leadId of queued) {
      expect((await kv.get(leadKey({ tenant: "acme", leadId })))?.json()).toMatchObject({ lead_id: leadId });
    }
    expect(entryFiles(dir)).toEqual([]);
    expect(await metric(intake, "lead_intake_outbox_drained_total")).toBe(5);
    expect(await metric(intake, "lead_intake_outbox_depth")).toBe(0);
    expect(await metric(intake, "lead_intake_degraded")).toBe(0);
    expect((await intake.app.inject("/readyz")).json().data.checks.outbox).toEqual({
      ok: true,
      detail: "empty",
    });
    const stored = await intake.app.inject({
      url: `/v1/lead/${queued[0]}`,
      headers: { "x-api-key": ACME_KEY },
    });
    expect(stored.statusCode).toBe(200);
    expect(stored.headers["x-lead-queued"]).toBeUndefined();
    expect(intake.logs.join("\n")).toContain("outbox_drained");

    // Back to normal: the next lead is published directly again.
    expect((await postLead(intake)).statusCode).toBe(200);
  });

  it("answers 503 with Retry-After once the outbox is full, and loses none of what it accepted", async () => {
    const { server, dir, intake } = await setUp({ maxLeads: 3 });
    await server.stop();
    await waitFor(() => !intake.broker.available, { description: "the broker to notice the disconnect" });
    const accepted: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await postLead(intake);
      expect(res.statusCode).toBe(202);
      accepted.push(res.json().data.lead_id);
    }
    const refused = await postLead(intake);
    expect(refused.statusCode).toBe(503);
    expect(refused.headers["retry-after"]).toBe("5");
    expect(refused.json().error).toMatchObject({
      code: "service_unavailable",
      message: expect.stringContaining("the local outbox is full (3 leads"),
    });
    expect(entryFiles(dir)).toHaveLength(3);
    expect((await intake.app.inject("/readyz")).json().data.checks.outbox.ok).toBe(false);

    await server.start();
    await waitFor(() => intake.outbox?.status().queued === 0, {
      description: "the outbox to drain",
      timeoutMs: 20_000,
    });
    expect(await scoredInStreamOrder(intake.jsm!)).toEqual(accepted);
  });
});

describe("lead-intake with NATS connected but not acknowledging (SIGSTOP)", () => {
  it("queues a lead whose publish times out, queues the next behind it at once, and drains both in order", async () => {
    const { server, intake } = await setUp();
    await freezeProcess(server.pid);
    let stopped = true;
    cleanups.push(async () => {
      if (stopped) process.kill(server.pid, "SIGCONT");
    });
    const started = Date.now();
    const a = await postLead(intake);
    const took = Date.now() - started;
    expect(a.statusCode).toBe(202);
    expect(took).toBeGreaterThanOrEqual(450); // waited for PUBLISH_TIMEOUT_MS (500)
    expect(took).toBeLessThan(2500);
    const bStarted = Date.now();
    const b = await postLead(intake, BOB);
    expect(b.statusCode).toBe(202);
    // Behind a queued lead it goes to the outbox without trying JetStream.
    expect(Date.now() - bStarted).toBeLessThan(450);

    process.kill(server.pid, "SIGCONT");
    stopped = false;
    await waitFor(() => intake.outbox?.status().queued === 0, {
      description: "the outbox to drain",
      timeoutMs: 20_000,
    });
    // The timed-out attempts may have reached the server after all: still one event per lead.
    expect(await scoredInStreamOrder(intake.jsm!)).toEqual([a.json().data.lead_id, b.json().data.lead_id]);
  });
});

describe("draining is idempotent", () => {
  it("a lead already stored and published before a crash is not published twice", async () => {
    const server = await startNatsServer();
    const dir = mkdtempSync(join(tmpdir(), "outbox-nats-"));
    cleanups.push(async () => {
      await server.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });
    // Accept a lead without NATS, as a first process would, and keep its entry.
    const first = await startIntake({ outbox: { dir } });
    const accepted = await postLead(first);
    expect(accepted.statusCode).toBe(202);
    await first.close();
    const leadId = accepted.json().data.lead_id as string;
    const { outbox } = await LeadOutbox.open({ dir, maxLeads: 10 });
    const entry = (await outbox.find("acme", leadId))!;
    await outbox.close();

    // That first process then stored and published it, and was killed before removing the entry.
    const probe = await startIntake({ server });
    cleanups.push(() => probe.close());
    const kv = await new Kvm(probe.nc!).open("leads");
    await kv.create(
      leadKey({ tenant: "acme", leadId }),
      new TextEncoder().encode(JSON.stringify(entry.lead)),
    );
    await jetstream(probe.nc!).publish(subjects.leadScored("acme", leadId), encodeEvent(entry.event), {
      msgID: entry.event.id,
    });

    const second = await startIntake({ server, outbox: { dir, retryMs: 200 } });
    cleanups.push(() => second.close());
    await waitFor(() => second.outbox?.status().queued === 0, { description: "the outbox to drain" });
    expect(await scoredInStreamOrder(probe.jsm!)).toEqual([leadId]);
    expect((await kv.get(leadKey({ tenant: "acme", leadId })))?.revision).toBe(1);
    expect(entryFiles(dir)).toEqual([]);
  });
});
