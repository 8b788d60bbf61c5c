import {
  decodeEvent,
  type FollowupDueData,
  idempotencyKey,
  makeEvent,
  subjects,
  topology,
} from "@followup/contracts";
import { type NatsServer, startNatsServer } from "@followup/nats-harness";
import { provisionTopology } from "@followup/service-kit";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { deadLetterSubject, listDeadLetters, replayDeadLetters } from "../src/dead-letters/store.js";

const topo = topology();
let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  await provisionTopology(nc, topo);
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
});

beforeEach(async () => {
  await jsm.streams.purge(topo.streams.dead.name);
  await jsm.streams.purge(topo.streams.followups.name);
});

function due(tenant: string, leadId: string, step: number, replays = 0): FollowupDueData {
  return {
    lead_id: leadId,
    step,
    delay_s: 1800,
    due_at: "2026-03-01T12:30:00.000Z",
    idempotency_key: idempotencyKey({ tenant, leadId, step }),
    channel: "hook",
    lead_created_at: "2026-03-01T12:00:00.000Z",
    pred_prob: 0.91,
    fired_at: "2026-03-01T12:30:00.002Z",
    replays,
    attempts_before: 0,
    // A field a newer scheduler might add: a replay carries it along unchanged.
    extra_hint: "kept",
  } as FollowupDueData;
}

/**
 * Stores a dead letter the way the dispatcher does. Its Nats-Msg-Id, like every follow-up id,
 * carries the lead and not the tenant (lead ids are unique across tenants), so each test uses
 * its own lead ids: the duplicate window outlives a purge.
 */
async function bury(tenant: string, leadId: string, step: number, replays = 0): Promise<FollowupDueData> {
  const data = due(tenant, leadId, step, replays);
  const event = makeEvent("followup.dead.v1", {
    source: "/dispatcher",
    subject: `${leadId}/${step}`,
    tenant,
    data: {
      lead_id: leadId,
      step,
      delay_s: data.delay_s,
      due_at: data.due_at,
      idempotency_key: data.idempotency_key,
      channel: "hook",
      attempts: 8,
      reason: "exhausted",
      last_status_code: 503,
      last_error: "HTTP 503",
      due: data,
    },
  });
  await js.publish(subjects.followupDead(tenant, leadId, step), JSON.stringify(event), {
    msgID: `${leadId}:${step}:dead:${replays}`,
  });
  return data;
}

async function queued() {
  const jsmNow = await jetstreamManager(nc);
  const out: { subject: string; msgId: string | undefined; data: FollowupDueData; tenant: string }[] = [];
  const { messages } = (await jsmNow.streams.info(topo.streams.followups.name)).state;
  for (let seq = 1, found = 0; found < messages && seq < 10_000; seq++) {
    const m = await jsmNow.streams.getMessage(topo.streams.followups.name, { seq }).catch(() => null);
    if (!m) continue;
    found++;
    const event = decodeEvent("followup.due.v1", m.data);
    out.push({
      subject: m.subject,
      msgId: m.header?.get("Nats-Msg-Id"),
      data: event.data,
      tenant: event.tenant,
    });
  }
  return out;
}

describe("dead letters: list and replay (real nats-server)", () => {
  it("builds tenant-scoped subject filters and refuses bad tokens", () => {
    expect(deadLetterSubject({ tenant: "acme" })).toBe("followup.dead.acme.>");
    expect(deadLetterSubject({ tenant: "acme", leadId: "L1" })).toBe("followup.dead.acme.L1.>");
    expect(deadLetterSubject({ tenant: "acme", leadId: "L1", step: 2 })).toBe("followup.dead.acme.L1.2");
    expect(deadLetterSubject({ tenant: "acme", step: 2 })).toBe("followup.dead.acme.*.2");
    expect(() => deadLetterSubject({ tenant: "ac.me" })).toThrow(/tenant/);
    expect(() => deadLetterSubject({ tenant: "acme", leadId: ">" })).toThrow(/lead_id/);
    expect(() => deadLetterSubject({ tenant: "acme", step: 0 })).toThrow(/step/);
  });

  it("lists a tenant's dead letters oldest first, by lead and step, within the limit, never another tenant's", async () => {
    await bury("acme", "L1", 1);
    await bury("globex", "G1", 1);
    await bury("acme", "L1", 2);
    await bury("acme", "L2", 1);
    await bury("globex", "G9", 2);

    const all = await listDeadLetters(nc, topo, { tenant: "acme" });
    expect(all.map((x) => x.subject)).toEqual([
      "followup.dead.acme.L1.1",
      "followup.dead.acme.L1.2",
      "followup.dead.acme.L2.1",
    ]);
    expect(all.every((x) => x.event.tenant === "acme")).toBe(true);
    expect(all[0]).toMatchObject({
      seq: 1,
      event: { type: "followup.dead.v1", data: { reason: "exhausted" } },
    });
    expect(Number.isNaN(Date.parse(all[0]!.received_at))).toBe(false);

    expect((await listDeadLetters(nc, topo, { tenant: "acme", leadId: "L1" })).map((x) => x.subject)).toEqual(
      ["followup.dead.acme.L1.1", "followup.dead.acme.L1.2"],
    );
    expect((await listDeadLetters(nc, topo, { tenant: "acme", step: 1 })).map((x) => x.subject)).toEqual([
      "followup.dead.acme.L1.1",
      "followup.dead.acme.L2.1",
    ]);
    expect(
      (await listDeadLetters(nc, topo, { tenant: "acme", leadId: "L1", step: 2 })).map((x) => x.seq),
    ).toEqual([3]);
    expect((await listDeadLetters(nc, topo, { tenant: "acme", limit: 2 })).map((x) => x.seq)).toEqual([1, 3]);
    expect((await listDeadLetters(nc, topo, { tenant: "globex" })).map((x) => x.subject)).toEqual([
      "followup.dead.globex.G1.1",
      "followup.dead.globex.G9.2",
    ]);
    expect(await listDeadLetters(nc, topo, { tenant: "initech" })).toEqual([]);
    expect(await listDeadLetters(nc, topo, { tenant: "acme", leadId: "nobody" })).toEqual([]);
  });

  it("clamps the limit to 1..1000", async () => {
    for (let i = 0; i < 3; i++) await bury("acme", `C${i}`, 1);
    expect(await listDeadLetters(nc, topo, { tenant: "acme", limit: 0 })).toHaveLength(1);
    expect(await listDeadLetters(nc, topo, { tenant: "acme", limit: 5000 })).toHaveLength(3);
  });

  it("replays a lead's dead letters onto the work queue with the same key and replays + 1, then deletes them", async () => {
    const original = await bury("acme", "R1", 1);
    await bury("acme", "R1", 2, 1);
    await bury("acme", "R2", 1);
    await bury("globex", "GR1", 1);

    const { replayed } = await replayDeadLetters(
      nc,
      topo,
      { tenant: "acme", leadId: "R1" },
      { source: "/lead-intake" },
    );
    expect(replayed.map((x) => x.subject)).toEqual(["followup.dead.acme.R1.1", "followup.dead.acme.R1.2"]);

    const onQueue = await queued();
    expect(onQueue.map((q) => [q.subject, q.msgId])).toEqual([
      ["followup.due.acme.R1.1", "R1:1:replay:1"],
      ["followup.due.acme.R1.2", "R1:2:replay:2"],
    ]);
    expect(onQueue[0]!.tenant).toBe("acme");
    expect(onQueue[0]!.data).toEqual({ ...original, replays: 1, attempts_before: 8 });
    expect(onQueue[0]!.data.idempotency_key).toBe("acme:R1:1");
    expect(onQueue[1]!.data.replays).toBe(2);
    // Each replay is recorded for the lead's timeline, at most as late as its due follow-up.
    const records = await jsm.direct.getBatch(topo.streams.results.name, {
      seq: 1,
      next_by_subj: "followup.replayed.acme.R1.>",
      batch: 10,
    });
    const recorded = [];
    for await (const m of records)
      recorded.push({
        msgId: m.header.get("Nats-Msg-Id"),
        event: decodeEvent("followup.replayed.v1", m.data),
      });
    expect(
      recorded.map((r) => [r.event.data.step, r.event.data.replays, r.event.data.attempts_before, r.msgId]),
    ).toEqual([
      [1, 1, 8, "R1:1:replay:1"],
      [2, 2, 8, "R1:2:replay:2"],
    ]);

    // Replayed letters are gone; the others (this tenant's other lead, the other tenant) stay.
    expect((await listDeadLetters(nc, topo, { tenant: "acme" })).map((x) => x.subject)).toEqual([
      "followup.dead.acme.R2.1",
    ]);
    expect(await listDeadLetters(nc, topo, { tenant: "globex" })).toHaveLength(1);
    // Nothing left to replay for that lead.
    expect((await replayDeadLetters(nc, topo, { tenant: "acme", leadId: "R1" })).replayed).toEqual([]);
  });

  it("replays a whole tenant without touching another tenant's letters", async () => {
    await bury("acme", "T1", 1);
    await bury("acme", "T2", 3);
    await bury("globex", "GT1", 1);
    const { replayed } = await replayDeadLetters(nc, topo, { tenant: "acme" });
    expect(replayed).toHaveLength(2);
    expect((await queued()).map((q) => q.subject)).toEqual([
      "followup.due.acme.T1.1",
      "followup.due.acme.T2.3",
    ]);
    expect(await listDeadLetters(nc, topo, { tenant: "acme" })).toEqual([]);
    expect((await listDeadLetters(nc, topo, { tenant: "globex" })).map((x) => x.subject)).toEqual([
      "followup.dead.globex.GT1.1",
    ]);
  });

  it("a second replay within the duplicate window queues nothing twice", async () => {
    await bury("acme", "D1", 1);
    const first = await listDeadLetters(nc, topo, { tenant: "acme" });
    await replayDeadLetters(nc, topo, { tenant: "acme" });
    // A crash between publish and delete would leave the letter: simulate it by storing it again.
    await js.publish(first[0]!.subject, JSON.stringify(first[0]!.event));
    await replayDeadLetters(nc, topo, { tenant: "acme" });
    expect(await queued()).toHaveLength(1);
    expect(await listDeadLetters(nc, topo, { tenant: "acme" })).toEqual([]);
  });
});
