// The reports service end to end, as its own broker identity: leads, plans, deliveries and
// outcomes made by the real services are counted once each, the report is tenant-scoped, and the
// rebuild command (as the reports identity) finds the projection equal to the streams.

import { topology } from "@followup/contracts";
import { REPO_ROOT, spawnProcess, waitFor } from "@followup/nats-harness";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiClient, type Engine, REFERENCE_LEADS, startEngine, TENANTS } from "../support/index.js";

let engine: Engine;

beforeAll(async () => {
  engine = await startEngine({ schedules: "2s" });
}, 90_000);

afterAll(async () => {
  await engine?.stop();
});

interface Arm {
  variant: string | null;
  enrolled: number;
  followups_delivered: number;
  converted: number;
  outcomes: Record<string, number>;
  inside_attribution_window: number;
}

describe("the reports service", () => {
  it("reports what the engine did, per tenant, and equals its rebuild from the streams", async () => {
    const api = engine.api;
    const leads = await Promise.all(Array.from({ length: 6 }, () => api.postLead(REFERENCE_LEADS.high)));
    await api.withKey(TENANTS.globex.apiKey).postLead(REFERENCE_LEADS.high);
    for (const lead of leads.slice(0, 2)) await api.recordOutcome(lead.lead_id, "booked");
    await api.recordOutcome(leads[2]!.lead_id, "ghosted");

    const reports = new ApiClient(engine.services.reports[0]!.url, TENANTS.acme.apiKey);
    const report = async () => {
      const res = await reports.request<{ data: { variants: Arm[]; holdout: Arm | null } }>(
        "GET",
        "/v1/reports/sequences/default",
      );
      return res.body.data;
    };
    // The built-in sequence (the scheduler does not enrol in sequences yet): one step at 2 s.
    await waitFor(
      async () => {
        const arm = (await report()).variants[0];
        // The four leads not booked are delivered; a booked one only if its outcome came after 2 s.
        return arm?.enrolled === 6 && arm.followups_delivered >= 4 && (arm.outcomes.ghosted ?? 0) === 1;
      },
      { description: "the report to count the six leads, their deliveries and outcomes", timeoutMs: 30_000 },
    );
    // Every step settled (delivered or stopped) and every event read into the projection.
    await waitFor(
      async () => {
        const views = await Promise.all(leads.map((lead) => api.getLead(lead.lead_id)));
        return views.every((view) =>
          view.followups.every((f) => f.status !== "pending" && f.status !== "due"),
        );
      },
      { description: "every lead's follow-ups to be delivered or stopped", timeoutMs: 30_000 },
    );
    const admin = await connect({ servers: engine.natsUrl, ...engine.as() });
    try {
      const jsm = await jetstreamManager(admin);
      const durables = Object.values(topology().consumers).filter((c) => c.consumedBy === "reports");
      await waitFor(
        async () => {
          const infos = await Promise.all(durables.map((c) => jsm.consumers.info(c.stream, c.durable)));
          return infos.every((info) => info.num_pending === 0 && info.num_ack_pending === 0);
        },
        { description: "the reports durables to be drained", timeoutMs: 30_000 },
      );
    } finally {
      await admin.close();
    }
    const arm = (await report()).variants[0]!;
    expect(arm).toMatchObject({
      variant: null,
      enrolled: 6,
      converted: 2,
      outcomes: { booked: 2, ghosted: 1 },
      inside_attribution_window: 3,
    });
    expect(arm.followups_delivered).toBeLessThanOrEqual(6);
    expect((await report()).holdout).toBeNull();
    const globex = await reports
      .withKey(TENANTS.globex.apiKey)
      .request<{ data: { variants: Arm[] } }>("GET", "/v1/reports/sequences/default");
    expect(globex.body.data.variants[0]?.enrolled).toBe(1);
    expect((await reports.withKey("nobody").request("GET", "/v1/reports/steps")).status).toBe(401);

    const rebuild = spawnProcess({
      name: "reports rebuild",
      command: process.execPath,
      args: ["--import", "tsx", "services/reports/src/rebuild-command.ts"],
      cwd: REPO_ROOT,
      env: { NATS_URL: engine.natsUrl, ...engine.broker!.envOf("reports"), LOG_LEVEL: "warn" },
    });
    const status = await rebuild.waitForExit(30_000);
    expect(status.code, rebuild.output().join("\n")).toBe(0);
    expect(rebuild.output().join("\n")).toContain("the projection equals its rebuild from the streams");
  }, 90_000);
});
