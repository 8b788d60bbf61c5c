// The engine under its broker identities: `pnpm broker-auth` writes the users and credentials,
// nats-server loads them (no anonymous client), `pnpm provision` runs as the provision
// identity, then lead-intake, scheduler and dispatcher run each as its own identity with
// NATS_PROVISION=false, and a lead gets its follow-ups delivered and shown.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Identity, SERVICE_IDENTITIES, suppressionKey, topology } from "@followup/contracts";
import { type NatsServer, spawnProcess, startNatsServer, waitFor } from "@followup/nats-harness";
import { AUTH_CONFIG_FILE, readIdentityEnv, writeBrokerAuth } from "@followup/service-kit";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Engine, REFERENCE_LEADS, REPO_ROOT, startEngine } from "../support/index.js";

let dir: string;
/** Seals the channel secrets lead-intake stores in channel_settings. */
const CHANNEL_KEY = Buffer.alloc(32, 5).toString("base64");
let server: NatsServer;
let engine: Engine | undefined;

const envOf = (identity: Identity) => readIdentityEnv(dir, identity);

beforeAll(async () => {
  dir = mkdtempSync(join(process.env.FOLLOWUP_HARNESS_RUN_DIR || tmpdir(), "broker-auth-"));
  writeBrokerAuth(dir, topology());
  // nats-server resolves `include` relative to the including file, even for an absolute path:
  // the harness writes its config elsewhere, so the block goes in as text.
  server = await startNatsServer({ extraConfig: readFileSync(join(dir, AUTH_CONFIG_FILE), "utf8") });

  const provision = spawnProcess({
    name: "pnpm provision",
    command: process.execPath,
    args: ["--import", "tsx", join(REPO_ROOT, "packages/service-kit/scripts/provision.ts")],
    cwd: REPO_ROOT,
    env: { NATS_URL: server.url, ...envOf("provision"), LOG_LEVEL: "info" },
  });
  const exit = await provision.waitForExit(45_000);
  expect(exit.code, provision.output().join("\n")).toBe(0);

  const serviceEnv = Object.fromEntries(SERVICE_IDENTITIES.map((id) => [id, envOf(id)]));
  serviceEnv["lead-intake"] = { ...serviceEnv["lead-intake"], CHANNEL_SECRETS_KEY: CHANNEL_KEY };
  engine = await startEngine({ natsUrl: server.url, schedules: "1s,2s", serviceEnv });
}, 120_000);

afterAll(async () => {
  await engine?.stop();
  await server?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the engine under its broker identities", () => {
  it("refuses an anonymous client", async () => {
    await expect(connect({ servers: server.url, maxReconnectAttempts: 0 })).rejects.toThrow(/authoriz/i);
  });

  it("delivers a lead's follow-ups and shows them, with no permissions violation", async () => {
    const live = engine!;
    const accepted = await live.api.postLead(REFERENCE_LEADS.high);
    await waitFor(() => live.hook!.deliveredFor(accepted.lead_id).length === 2, {
      description: "both follow-ups of the lead to reach the hook",
      timeoutMs: 20_000,
    });
    const view = await waitFor(
      async () => {
        const v = await live.api.getLead(accepted.lead_id);
        return v.followups.every((f) => f.status === "delivered") && v;
      },
      { description: "the lead view to show both follow-ups delivered" },
    );
    expect(view.followups).toHaveLength(2);
    expect((await live.api.queueStatus()).enabled).toBe(true);

    // lead-intake's own hook receiver: a receipt written to hook_receipts, then read back in the view.
    const hook = await live.api.request("POST", "/ops/followup-hook", {
      body: { lead_id: accepted.lead_id, strategy: "1s", message: "by hand", ts: "x" },
    });
    expect(hook.status).toBe(200);
    const received = await live.api.getLead(accepted.lead_id);
    expect(received.timeline.map((e) => e.event)).toContain("hook_received");
    expectNoViolation(live);
  });

  it("keeps a tenant's templates under lead-intake's identity: put, list, preview for a lead", async () => {
    const live = engine!;
    const template = { channel: "sms", body: 'Hi {{ lead.first_name | default: "there" }}' };
    const created = await live.api.request("PUT", "/v1/templates/first-touch", { body: template });
    expect(created.status).toBe(201);
    const listed = await live.api.request<{ data: { templates: { name: string }[] } }>(
      "GET",
      "/v1/templates",
    );
    expect(listed.status).toBe(200);
    expect(listed.body.data.templates.map((t) => t.name)).toContain("first-touch");
    const lead = await live.api.postLead(REFERENCE_LEADS.high);
    const previewed = await live.api.request<{ data: { body: string } }>(
      "POST",
      "/v1/templates/first-touch/preview",
      { body: { lead_id: lead.lead_id } },
    );
    expect(previewed.status).toBe(200);
    expect(previewed.body.data).toEqual({ body: "Hi Alex" });
    expectNoViolation(live);
  });

  it("keeps a tenant's sequences under lead-intake's identity: put, If-Match, list, delete", async () => {
    const live = engine!;
    // A step's template must exist.
    const template = { channel: "sms", body: "Hi {{ lead.first_name }}" };
    expect((await live.api.request("PUT", "/v1/templates/identity-touch", { body: template })).status).toBe(
      201,
    );
    const body = { steps: [{ delay: "30m", channel: "sms", template: "identity-touch" }] };
    const created = await live.api.request<{ data: { revision: number } }>("PUT", "/v1/sequences/identity", {
      body,
    });
    expect(created.status).toBe(201);
    const revision = created.body.data.revision;
    const replaced = await live.api.request("PUT", "/v1/sequences/identity", {
      body: { ...body, priority: 5 },
      headers: { "if-match": `"${revision}"` },
    });
    expect(replaced.status).toBe(200);
    const listed = await live.api.request<{ data: { sequences: { name: string; priority: number }[] } }>(
      "GET",
      "/v1/sequences",
    );
    expect(listed.status).toBe(200);
    expect(listed.body.data.sequences.map((s) => [s.name, s.priority])).toContainEqual(["identity", 5]);
    expect((await live.api.request("DELETE", "/v1/sequences/identity")).status).toBe(200);
    expect((await live.api.request("GET", "/v1/sequences/identity")).status).toBe(404);
    expectNoViolation(live);
  });

  it("keeps a tenant's channel settings under lead-intake's identity: put, If-Match, list, delete", async () => {
    const live = engine!;
    const webhook = { webhook_url: "https://hooks.slack.com/services/T0/B0/identitysecret1" };
    const created = await live.api.request<{ data: { revision: number; settings: { webhook_url: string } } }>(
      "PUT",
      "/v1/channels/slack",
      { body: webhook },
    );
    expect(created.status).toBe(201);
    expect(created.body.data.settings.webhook_url).toBe("****ret1");
    const replaced = await live.api.request("PUT", "/v1/channels/slack", {
      body: webhook,
      headers: { "if-match": `"${created.body.data.revision}"` },
    });
    expect(replaced.status).toBe(200);
    const listed = await live.api.request<{ data: { channels: { name: string }[] } }>("GET", "/v1/channels");
    expect(listed.body.data.channels.map((c) => c.name)).toContain("slack");
    expect((await live.api.request("DELETE", "/v1/channels/slack")).status).toBe(200);
    expect((await live.api.request("GET", "/v1/channels/slack")).status).toBe(404);
    expectNoViolation(live);
  });

  it("keeps a tenant's suppressions under lead-intake's identity: add, find, list, lift", async () => {
    const live = engine!;
    const address = "identity@example.com";
    const added = await live.api.request<{ data: { id: string } }>("POST", "/v1/suppressions", {
      body: { channel: "email", address },
    });
    expect(added.status).toBe(201);
    const found = await live.api.request<{ data: { suppressions: { id: string; address: string }[] } }>(
      "GET",
      `/v1/suppressions?channel=email&address=${encodeURIComponent(address)}`,
    );
    expect(found.body.data.suppressions).toEqual([
      expect.objectContaining({ id: added.body.data.id, address }),
    ]);
    const listed = await live.api.request<{ data: { count: number } }>("GET", "/v1/suppressions");
    expect(listed.body.data.count).toBeGreaterThan(0);
    expect((await live.api.request("DELETE", `/v1/suppressions/${added.body.data.id}`)).status).toBe(200);
    expectNoViolation(live);
  });

  it("lets the dispatcher read channel settings and suppressions and write them (its effects), and no template or lead", async () => {
    const live = engine!;
    const suppressed = "+14155550199";
    expect(
      (await live.api.request("POST", "/v1/suppressions", { body: { channel: "sms", address: suppressed } }))
        .status,
    ).toBe(201);
    expect(
      (
        await live.api.request("PUT", "/v1/channels/slack", {
          body: { webhook_url: "https://hooks.slack.com/services/T0/B0/dispatcher" },
        })
      ).status,
    ).toBe(201);
    const env = envOf("dispatcher");
    const nc = await connect({
      servers: server.url,
      user: env.NATS_USER,
      pass: env.NATS_PASSWORD,
      inboxPrefix: env.NATS_INBOX_PREFIX,
      maxReconnectAttempts: 0,
    });
    try {
      const kvm = new Kvm(jetstream(nc, { timeout: 2000 }));
      const settings = await kvm.open("channel_settings");
      const suppressions = await kvm.open("suppressions");
      expect((await settings.get("acme.slack"))?.operation).toBe("PUT");
      expect((await suppressions.get(suppressionKey("acme", "sms", suppressed)))?.operation).toBe("PUT");
      // A Twilio 21610 adds a suppression; a Slack 410 marks the settings broken.
      const added = suppressionKey("acme", "sms", "+14155550100");
      expect(await suppressions.put(added, "{}")).toBeGreaterThan(0);
      await suppressions.purge(added).catch(() => undefined);
      const templates = await kvm.open("templates");
      await expect(templates.put("acme.first-touch", "{}")).rejects.toThrow();
      const leads = await kvm.open("leads");
      await expect(leads.put("acme.L-forged", "{}")).rejects.toThrow();
    } finally {
      await nc.close();
    }
    expect((await live.api.request("DELETE", "/v1/channels/slack")).status).toBe(200);
  });

  it("cancels on a stopping outcome, dead-letters a refused follow-up and replays it", async () => {
    const live = engine!;
    const cancelled = await live.api.postLead(REFERENCE_LEADS.high);
    await live.api.recordOutcome(cancelled.lead_id, "booked");
    await waitFor(
      async () =>
        (await live.api.getLead(cancelled.lead_id)).followups.every((f) => f.status === "cancelled"),
      { description: "the booked lead's follow-ups to be cancelled (the scheduler purged its timers)" },
    );

    const { lead_id: leadId } = await live.api.postLead(REFERENCE_LEADS.high);
    let accept = false;
    live.hook!.respond((call) =>
      call.body?.lead_id === leadId && call.body.step === 1 && !accept
        ? { status: 410, body: "gone" }
        : undefined,
    );
    await waitFor(async () => (await live.api.deadLetters({ lead_id: leadId })).count === 1, {
      description: "step 1 of the lead to be dead-lettered",
      timeoutMs: 15_000,
    });
    accept = true;
    expect(await live.api.replayDeadLetters({ lead_id: leadId })).toMatchObject({ replayed: 1 });
    await waitFor(
      async () => (await live.api.getLead(leadId)).followups.every((f) => f.status === "delivered"),
      { description: "the replayed follow-up to be delivered", timeoutMs: 15_000 },
    );
    expect((await live.api.deadLetters({ lead_id: leadId })).count).toBe(0);
    expectNoViolation(live);
  }, 40_000);
});

function expectNoViolation(live: Engine): void {
  for (const service of live.all()) {
    expect(service.output().filter((line) => /permissions violation/i.test(line))).toEqual([]);
  }
}
