import { LeadStopState, leadKey, type StoredLead } from "@followup/contracts";
import { type NatsServer, startNatsServer } from "@followup/nats-harness";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readLead, readStopReason } from "../src/index.js";

let server: NatsServer;
let nc: NatsConnection;
let leads: KV;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  leads = await new Kvm(nc).create("leads_read");
});

afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
});

const lead = (leadId: string, extra: Partial<StoredLead> = {}): StoredLead => ({
  lead_id: leadId,
  tenant: "acme",
  name: "Ada Lovelace",
  phone: "+44 20 7946 0000",
  details: "",
  enrichment: { intent: "lead_capture", sentiment: "positive", urgency: "normal", score: 0.5 },
  pred_prob: 0.8,
  model_version: "test",
  created_at: "2026-03-01T12:00:00.000Z",
  ...extra,
});

async function store(leadId: string, value: unknown): Promise<number> {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return leads.put(leadKey({ tenant: "acme", leadId }), text);
}

describe("readLead (real nats-server)", () => {
  it("returns the parsed lead with its revision", async () => {
    const revision = await store("L1", lead("L1"));
    expect(await readLead(leads, { tenant: "acme", leadId: "L1" })).toEqual({
      status: "found",
      lead: lead("L1"),
      revision,
    });
  });

  it("says absent for a lead never stored, of another tenant, or deleted", async () => {
    await store("L2", lead("L2"));
    await leads.delete(leadKey({ tenant: "acme", leadId: "L2" }));
    for (const ref of [
      { tenant: "acme", leadId: "none" },
      { tenant: "other", leadId: "L1" },
      { tenant: "acme", leadId: "L2" },
    ]) {
      expect(await readLead(leads, ref)).toEqual({ status: "absent" });
    }
  });

  it("says invalid, naming the field, for a lead that is not JSON or breaks its contract", async () => {
    await store("L3", "{not json");
    await store("L4", { ...lead("L4"), pred_prob: 7 });
    expect(await readLead(leads, { tenant: "acme", leadId: "L3" })).toMatchObject({ status: "invalid" });
    const broken = await readLead(leads, { tenant: "acme", leadId: "L4" });
    expect(broken).toEqual({ status: "invalid", error: expect.stringContaining("pred_prob") });
  });

  it("parses only what the reader asks for", async () => {
    const stopped = { outcome: { outcome: "booked", recorded_at: "2026-03-01T13:00:00.000Z" } };
    await store("L5", { ...lead("L5"), pred_prob: 7, ...stopped });
    expect(await readLead(leads, { tenant: "acme", leadId: "L5" }, LeadStopState)).toMatchObject({
      status: "found",
      lead: stopped,
    });
  });
});

describe("readStopReason (real nats-server)", () => {
  it("stops on an outcome or a missing lead, goes ahead for an unreadable one and says so", async () => {
    await store("S1", lead("S1", { outcome: { outcome: "spam", recorded_at: "2026-03-01T13:00:00.000Z" } }));
    await store("S2", lead("S2"));
    await store("S3", "{not json");
    const invalid: string[] = [];
    const reason = (leadId: string) =>
      readStopReason(leads, { tenant: "acme", leadId }, (error) => invalid.push(`${leadId}: ${error}`));
    expect(await reason("S1")).toBe("outcome");
    expect(await reason("S2")).toBeNull();
    expect(await reason("none")).toBe("lead_missing");
    expect(await reason("S3")).toBeNull();
    expect(invalid).toEqual([expect.stringMatching(/^S3: is not JSON/)]);
  });
});
