// POST /v1/lead/:id/enroll and /unenroll against a real nats-server, without a scheduler: what
// each answers, and the command event it publishes on LEADS for the scheduler to apply.

import { decodeEvent, type FollowupPlan, leadKey, subjects } from "@followup/contracts";
import type { NatsServer } from "@followup/nats-harness";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ACME_KEY,
  apiCall,
  detailsOf,
  freshName,
  GLOBEX_KEY,
  type Intake,
  startIntakeWithServer,
  stopIntakeWithServer,
} from "./fixtures.js";

let server: NatsServer;
let intake: Intake;

beforeAll(async () => {
  ({ server, intake } = await startIntakeWithServer());
});

afterAll(async () => {
  await stopIntakeWithServer(intake, server);
});

const call = (method: "POST" | "PUT", url: string, options: Parameters<typeof apiCall>[3] = {}) =>
  apiCall(intake.app, method, url, options);

async function newLead(phone = "+33 1 42 68 53 00", timezone?: string): Promise<string> {
  const res = await call("POST", "/v1/lead", {
    body: {
      name: "Camille Martin",
      phone,
      details: "Urgent: need to book",
      ...(timezone ? { timezone } : {}),
    },
  });
  expect(res.status).toBe(200);
  return (res.body.data as { lead_id: string }).lead_id;
}

async function newSequence(stopOn?: string[]): Promise<string> {
  const name = freshName("manual");
  const res = await call("PUT", `/v1/sequences/${name}`, {
    body: { steps: [{ delay: "1h", channel: "hook" }], ...(stopOn ? { stop_on: stopOn } : {}) },
  });
  expect(res.status).toBe(201);
  return name;
}

/** The last message on the lead's subject of `kind`, or null. */
async function lastOn(subject: string) {
  return intake
    .jsm!.streams.getMessage(intake.topology.streams.leads.name, { last_by_subj: subject })
    .catch(() => null);
}

describe("POST /v1/lead/:id/enroll", () => {
  it("publishes lead.enrolled once per lead and sequence, with the lead's zones and never its phone", async () => {
    const leadId = await newLead("+33 1 42 68 53 00", "Asia/Tokyo");
    const sequence = await newSequence();
    const first = await call("POST", `/v1/lead/${leadId}/enroll`, { body: { sequence } });
    expect(first.status).toBe(202);
    expect(first.body.data).toMatchObject({ lead_id: leadId, sequence, status: "accepted" });

    const stored = await lastOn(subjects.leadEnrolled("acme", leadId));
    const event = decodeEvent("lead.enrolled.v1", stored!.data);
    expect(event.data).toMatchObject({
      lead_id: leadId,
      sequence,
      timezone: "Asia/Tokyo",
      phone_timezone: "Europe/Paris",
    });
    expect(new TextDecoder().decode(stored!.data)).not.toContain("42 68");

    // Asked again before the scheduler applied it: the stream's duplicate window drops it.
    expect((await call("POST", `/v1/lead/${leadId}/enroll`, { body: { sequence } })).status).toBe(202);
    const info = await intake.jsm!.streams.info(intake.topology.streams.leads.name, {
      subjects_filter: subjects.leadEnrolled("acme", leadId),
    });
    expect(info.state.subjects?.[subjects.leadEnrolled("acme", leadId)]).toBe(1);
  });

  it("answers 200 already_enrolled once the lead's plan has the sequence, publishing nothing", async () => {
    const leadId = await newLead();
    const sequence = await newSequence();
    const plans = await new Kvm(intake.nc!).open(intake.topology.buckets.plans.bucket);
    const plan: FollowupPlan = {
      lead_id: leadId,
      tenant: "acme",
      lead_created_at: new Date().toISOString(),
      pred_prob: 0.2,
      planned_at: new Date().toISOString(),
      steps: [
        {
          step: 1,
          delay_s: 3600,
          due_at: new Date(Date.now() + 3_600_000).toISOString(),
          state: "pending",
          channel: "hook",
          sequence: { name: sequence, revision: 1 },
        },
      ],
    };
    await plans.put(leadKey({ tenant: "acme", leadId }), JSON.stringify(plan));
    const again = await call("POST", `/v1/lead/${leadId}/enroll`, { body: { sequence } });
    expect(again.status).toBe(200);
    expect(again.body.data).toMatchObject({ status: "already_enrolled", sequence });
    expect(await lastOn(subjects.leadEnrolled("acme", leadId))).toBeNull();
  });

  it("refuses an unknown sequence (404 naming it), an unknown or another tenant's lead, a bad name and a stopping outcome", async () => {
    const leadId = await newLead();
    const unknown = await call("POST", `/v1/lead/${leadId}/enroll`, { body: { sequence: "no-such" } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error?.message).toBe('sequence "no-such" not found');
    expect(detailsOf(unknown).map((d) => d.path)).toEqual(["sequence"]);

    const sequence = await newSequence(["booked", "spam"]);
    expect((await call("POST", "/v1/lead/no-such-lead/enroll", { body: { sequence } })).status).toBe(404);
    expect(
      (await call("POST", `/v1/lead/${leadId}/enroll`, { body: { sequence }, key: GLOBEX_KEY })).status,
    ).toBe(404);
    const bad = await call("POST", `/v1/lead/${leadId}/enroll`, { body: { sequence: "Not Valid" } });
    expect(bad.status).toBe(400);
    expect(detailsOf(bad).map((d) => d.path)).toEqual(["sequence"]);

    expect((await call("POST", `/v1/lead/${leadId}/outcome`, { body: { outcome: "spam" } })).status).toBe(
      200,
    );
    const stopped = await call("POST", `/v1/lead/${leadId}/enroll`, { body: { sequence } });
    expect(stopped.status).toBe(409);
    expect(stopped.body.error?.code).toBe("conflict");
    // An outcome the sequence does not stop on does not refuse it.
    const lenient = await newSequence(["booked"]);
    expect((await call("POST", `/v1/lead/${leadId}/enroll`, { body: { sequence: lenient } })).status).toBe(
      202,
    );
    expect(await lastOn(subjects.leadEnrolled("acme", leadId))).not.toBeNull();
  });
});

describe("POST /v1/lead/:id/unenroll", () => {
  it("publishes lead.unenrolled for the tenant's lead; an unknown lead is 404", async () => {
    const leadId = await newLead();
    const res = await call("POST", `/v1/lead/${leadId}/unenroll`, { key: ACME_KEY });
    expect(res.status).toBe(202);
    const stored = await lastOn(subjects.leadUnenrolled("acme", leadId));
    expect(decodeEvent("lead.unenrolled.v1", stored!.data).data.lead_id).toBe(leadId);
    expect((await call("POST", "/v1/lead/no-such-lead/unenroll")).status).toBe(404);
    expect((await call("POST", `/v1/lead/${leadId}/unenroll`, { key: GLOBEX_KEY })).status).toBe(404);
  });
});
