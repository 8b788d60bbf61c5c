// Sequences through the real services: lead-intake, scheduler and dispatcher as child processes
// around one nats-server, each as its own broker identity. Two tenants with different sequences
// get different follow-ups; a lead enrolled by hand gets its sequence once and shows a step a
// send window moved; unenrolling stops what is pending.

import type { LeadView } from "@followup/contracts";
import { waitFor } from "@followup/nats-harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiClient, type Engine, REFERENCE_LEADS, startEngine, TENANTS } from "../support/index.js";

let engine: Engine;
let acme: ApiClient;
let globex: ApiClient;

beforeAll(async () => {
  engine = await startEngine();
  acme = engine.api;
  globex = engine.api.withKey(TENANTS.globex.apiKey);
}, 90_000);

afterAll(async () => {
  await engine?.stop();
});

async function putSequence(api: ApiClient, name: string, body: unknown): Promise<number> {
  const response = await api.request<{ data: { revision: number } }>("PUT", `/v1/sequences/${name}`, {
    body,
  });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body.data.revision;
}

async function viewWhere(api: ApiClient, leadId: string, ready: (view: LeadView) => boolean, what: string) {
  return waitFor(
    async () => {
      const response = await api.request<{ data: LeadView }>("GET", `/v1/lead/${leadId}`);
      return response.status === 200 && ready(response.body.data) && response.body.data;
    },
    { description: what, timeoutMs: 15_000, intervalMs: 100 },
  );
}

async function postLead(api: ApiClient): Promise<string> {
  const response = await api.request<{ data: { lead_id: string } }>("POST", "/v1/lead", {
    body: REFERENCE_LEADS.high,
  });
  expect(response.status).toBe(200);
  return response.body.data.lead_id;
}

/** 09:00 UTC two days from now, and its weekday as a window names it. */
function inTwoDays(): { at: Date; day: string } {
  const now = new Date();
  const at = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 2, 9));
  return { at, day: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"][at.getUTCDay()]! };
}

describe("sequences through the real services", () => {
  it("gives two tenants with different sequences different follow-ups", async () => {
    await putSequence(acme, "one-quick", { steps: [{ delay: "1s", channel: "hook" }] });
    await putSequence(globex, "two-slower", {
      steps: [
        { delay: "2s", channel: "hook" },
        { delay: "3s", channel: "hook" },
      ],
    });
    // The PUTs have returned: the next leads get these sequences, not the built-in 2s,4s.
    const acmeLead = await postLead(acme);
    const globexLead = await postLead(globex);

    const hook = engine.hook!;
    await waitFor(
      () => hook.deliveredFor(acmeLead).length === 1 && hook.deliveredFor(globexLead).length === 2,
      {
        description: "one follow-up of acme's lead and two of globex's",
        timeoutMs: 15_000,
      },
    );
    expect(hook.deliveredFor(acmeLead).map((c) => [c.body?.tenant, c.body?.step, c.body?.strategy])).toEqual([
      ["acme", 1, "1s"],
    ]);
    expect(
      hook.deliveredFor(globexLead).map((c) => [c.body?.tenant, c.body?.step, c.body?.strategy]),
    ).toEqual([
      ["globex", 1, "2s"],
      ["globex", 2, "3s"],
    ]);
    for (const call of [...hook.deliveredFor(acmeLead), ...hook.deliveredFor(globexLead)]) {
      expect(call.receivedAt, "never early").toBeGreaterThanOrEqual(Date.parse(call.body!.due_at!));
    }

    const acmeView = await viewWhere(
      acme,
      acmeLead,
      (v) => v.followups[0]?.status === "delivered",
      "acme delivered",
    );
    expect(acmeView.followups.map((f) => [f.sequence, f.channel, f.status])).toEqual([
      ["one-quick", "hook", "delivered"],
    ]);
    const globexView = await viewWhere(
      globex,
      globexLead,
      (v) => v.followups.every((f) => f.status === "delivered"),
      "globex delivered",
    );
    expect(globexView.followups.map((f) => f.sequence)).toEqual(["two-slower", "two-slower"]);
    // Another tenant's lead is not found, nor its sequence.
    expect((await acme.request("GET", `/v1/lead/${globexLead}`)).status).toBe(404);
    expect((await acme.request("GET", "/v1/sequences/two-slower")).status).toBe(404);
  });

  it("enrols a lead by hand once, shows the step a send window moved, and unenrolling cancels it", async () => {
    const { at, day } = inTwoDays();
    await putSequence(acme, "by-hand", {
      enabled: false,
      steps: [{ delay: "1m", channel: "hook" }],
      send_window: { timezone: "UTC", days: [day], start: "09:00", end: "10:00" },
      stop_on: ["booked"],
    });
    const leadId = await postLead(acme);
    // Whatever acme's other sequences gave the lead at scoring: those steps come first.
    const planned = await viewWhere(acme, leadId, (v) => v.qualified !== null, "the lead planned at scoring");
    const automatic = planned.followups.length;

    const unknown = await acme.request<{ error: { message: string; details: { path: string }[] } }>(
      "POST",
      `/v1/lead/${leadId}/enroll`,
      { body: { sequence: "no-such-sequence" } },
    );
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toContain('"no-such-sequence"');
    expect(unknown.body.error.details[0]?.path).toBe("sequence");

    const requested = Date.now();
    const first = await acme.request<{ data: { status: string } }>("POST", `/v1/lead/${leadId}/enroll`, {
      body: { sequence: "by-hand" },
    });
    expect([first.status, first.body.data.status]).toEqual([202, "accepted"]);
    const view = await viewWhere(
      acme,
      leadId,
      (v) => v.followups.length === automatic + 1,
      "the enrolment applied",
    );
    const moved = view.followups[automatic]!;
    expect([moved.step, moved.sequence, moved.channel, moved.status]).toEqual([
      automatic + 1,
      "by-hand",
      "hook",
      "pending",
    ]);
    expect(moved.due_at).toBe(at.toISOString());
    expect(Date.parse(moved.moved_from!) - requested).toBeGreaterThanOrEqual(60_000 - 1_000);
    expect(Date.parse(moved.moved_from!) - requested).toBeLessThan(60_000 + 5_000);

    const again = await acme.request<{ data: { status: string } }>("POST", `/v1/lead/${leadId}/enroll`, {
      body: { sequence: "by-hand" },
    });
    expect([again.status, again.body.data.status]).toEqual([200, "already_enrolled"]);

    await viewWhere(
      acme,
      leadId,
      (v) => v.followups.slice(0, automatic).every((f) => f.status === "delivered"),
      "the automatic follow-ups delivered",
    );
    const unenrolled = await acme.request("POST", `/v1/lead/${leadId}/unenroll`);
    expect(unenrolled.status).toBe(202);
    const stopped = await viewWhere(
      acme,
      leadId,
      (v) => v.followups.every((f) => f.status !== "pending"),
      "the pending follow-up cancelled",
    );
    expect(stopped.followups.map((f) => f.status)).toEqual([
      ...Array<string>(automatic).fill("delivered"),
      "cancelled",
    ]);
    expect(stopped.timeline.find((e) => e.event === "cancelled")?.detail).toEqual({ reason: "unenrolled" });
  });
});
