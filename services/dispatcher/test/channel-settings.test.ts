import { randomBytes } from "node:crypto";
import {
  type ChannelSettingsRecord,
  channelSettingsKey,
  SMS_SEND_HOURS,
  topology,
} from "@followup/contracts";
import { type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import {
  createLogger,
  provisionTopology,
  sealingKeyring,
  sealSecret,
  secretContext,
} from "@followup/service-kit";
import { type HookRecorder, newHookSecret, startHookRecorder } from "@followup/system-tests/support";
import { jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HookChannel } from "../src/channels/hook.js";
import { ChannelSettingsCache } from "../src/channels/settings.js";
import { withinWindow } from "../src/settle.js";
import { dueEvent, KEY, SECRET } from "./fixtures.js";

const keyring = sealingKeyring(randomBytes(32).toString("base64"));
const log = createLogger({ service: "dispatcher", level: "silent" });

let server: NatsServer;
let nc: NatsConnection;
let kv: KV;
let cache: ChannelSettingsCache;

/** A record as lead-intake stores it: the secrets sealed, bound to tenant, channel and field. */
function record(
  tenant: string,
  name: "hook" | "slack",
  fields: Record<string, string>,
  secrets: Record<string, string>,
) {
  const sealed = Object.fromEntries(
    Object.entries(secrets).map(([field, value]) => [
      field,
      sealSecret(keyring, value, secretContext(tenant, name, field)),
    ]),
  );
  return {
    tenant,
    name,
    updated_at: new Date().toISOString(),
    settings: fields,
    secrets: sealed,
  } satisfies ChannelSettingsRecord;
}

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  const topo = topology();
  await provisionTopology(nc, topo);
  kv = await new Kvm(nc).open(topo.buckets.channels.bucket);
  // One record before the cache starts (delivered by the watch's first pass), the rest after.
  await kv.put(
    channelSettingsKey("early", "slack"),
    JSON.stringify(record("early", "slack", {}, { webhook_url: "https://hooks.example/early" })),
  );
  cache = new ChannelSettingsCache(kv, {
    jsm: await jetstreamManager(nc),
    bucket: topo.buckets.channels.bucket,
    keyring,
    log,
  });
  await cache.start();
});

afterAll(async () => {
  cache?.stop();
  await nc?.close();
  await server?.cleanup();
});

describe("the channel settings cache (a KV watch, real nats-server)", () => {
  it("serves what was stored before it started, and follows puts and deletes without a read", async () => {
    expect(await cache.get("early", "slack")).toEqual({
      found: true,
      settings: { webhook_url: "https://hooks.example/early" },
    });
    expect(await cache.get("later", "slack")).toEqual({ found: false, why: "not_configured" });
    await kv.put(
      channelSettingsKey("later", "slack"),
      JSON.stringify(record("later", "slack", {}, { webhook_url: "https://hooks.example/v1" })),
    );
    await waitFor(async () => (await cache.get("later", "slack")).found, {
      description: "the put reaches the cache",
      timeoutMs: 5_000,
    });
    await kv.put(
      channelSettingsKey("later", "slack"),
      JSON.stringify(record("later", "slack", {}, { webhook_url: "https://hooks.example/v2" })),
    );
    await waitFor(
      async () => {
        const got = await cache.get("later", "slack");
        return got.found && got.settings.webhook_url === "https://hooks.example/v2";
      },
      { description: "the second put reaches the cache", timeoutMs: 5_000 },
    );
    await kv.delete(channelSettingsKey("later", "slack"));
    await waitFor(async () => !(await cache.get("later", "slack")).found, {
      description: "the delete reaches the cache",
      timeoutMs: 5_000,
    });
  });

  it("fails closed on a secret that does not open (copied from another tenant), naming no value", async () => {
    const copied = record("victim", "slack", {}, { webhook_url: "https://hooks.example/secret-path-123" });
    await kv.put(channelSettingsKey("thief", "slack"), JSON.stringify({ ...copied, tenant: "thief" }));
    const got = await waitFor(
      async () => {
        const read = await cache.get("thief", "slack");
        return !read.found && read.why !== "not_configured" && read;
      },
      { description: "the copied record seen", timeoutMs: 5_000 },
    );
    expect(got).toMatchObject({ found: false, why: "unreadable" });
    expect(JSON.stringify(got)).not.toContain("secret-path-123");
  });

  it("marks a channel broken once, and the cache shows the mark", async () => {
    const key = channelSettingsKey("gone", "slack");
    await kv.put(
      key,
      JSON.stringify(record("gone", "slack", {}, { webhook_url: "https://hooks.example/old" })),
    );
    const broken = { at: new Date().toISOString(), reason: "channel_gone", status_code: 410 };
    expect(await cache.markBroken("gone", "slack", broken)).toBe(true);
    expect((await kv.get(key))?.json()).toMatchObject({ broken });
    await waitFor(
      async () => (await cache.get("gone", "slack")).found && (await cache.get("gone", "slack")),
      {
        description: "the mark reaches the cache",
        timeoutMs: 5_000,
      },
    );
    expect(await cache.get("gone", "slack")).toMatchObject({ found: true, broken });
    // Marked already: not written again.
    const revision = (await kv.get(key))!.revision;
    expect(await cache.markBroken("gone", "slack", broken)).toBe(false);
    expect((await kv.get(key))!.revision).toBe(revision);
  });
});

describe("the hook channel with a tenant's own hook", () => {
  let tenantHook: HookRecorder;
  let defaultHook: HookRecorder;
  let channel: HookChannel;
  const tenantSecret = newHookSecret();

  beforeAll(async () => {
    [tenantHook, defaultHook] = await Promise.all([
      startHookRecorder({ secret: tenantSecret }),
      startHookRecorder({ secret: SECRET }),
    ]);
    // The fake receivers speak http; a tenant's hook URL is https when lead-intake stores it.
    await kv.put(
      channelSettingsKey("own", "hook"),
      JSON.stringify(record("own", "hook", { url: tenantHook.url }, { secret: tenantSecret })),
    );
    await waitFor(async () => (await cache.get("own", "hook")).found, {
      description: "the hook settings cached",
      timeoutMs: 5_000,
    });
    channel = new HookChannel({
      url: defaultHook.url,
      secret: KEY,
      timeoutMs: 2_000,
      concurrency: 4,
      settings: cache,
    });
  });

  afterAll(async () => {
    await channel?.close();
    await Promise.all([tenantHook?.close(), defaultHook?.close()]);
  });

  it("calls the tenant's URL signed with its secret, and the deployment's for a tenant without one", async () => {
    for (const tenant of ["own", "plain"]) {
      const due = dueEvent({ tenant, leadId: `L-${tenant}` }).data;
      const answer = await channel.send({ tenant, due, attempt: 1, idempotencyKey: due.idempotency_key });
      expect(answer.classification, tenant).toEqual({ kind: "delivered" });
    }
    expect(tenantHook.calls.map((c) => [c.webhookId, c.verified])).toEqual([["own:L-own:1", true]]);
    expect(defaultHook.calls.map((c) => [c.webhookId, c.verified])).toEqual([["plain:L-plain:1", true]]);
  });
});

describe("withinWindow (an SMS retry never lands at night)", () => {
  it("moves a retry that would land outside 08:00-21:00 in the zone to the next opening", () => {
    const now = new Date("2026-03-02T20:59:00Z");
    const hours = { windows: [SMS_SEND_HOURS], zone: "UTC" };
    // 30 s later is still open; 5 minutes later is 21:04: held until 08:00 the next morning.
    expect(withinWindow(now, 30_000, hours)).toBe(30_000);
    expect(withinWindow(now, 300_000, hours)).toBe(Date.parse("2026-03-03T08:00:00Z") - now.getTime());
    // In New York it is 15:59 then: no move.
    expect(withinWindow(now, 300_000, { windows: [SMS_SEND_HOURS], zone: "America/New_York" })).toBe(300_000);
    expect(withinWindow(now, 300_000, undefined)).toBe(300_000);
  });
});
