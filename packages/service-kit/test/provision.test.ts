import { topology } from "@followup/contracts";
import { type NatsServer, startNatsServer } from "@followup/nats-harness";
import { AckPolicy, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection, nanos } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provisionTopology } from "../src/index.js";

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
});

describe("provisionTopology (real nats-server)", () => {
  it("creates every stream, consumer and bucket of the topology, as specified", async () => {
    const t = topology({ queue: "followups" });
    await provisionTopology(nc, t);
    const jsm = await jetstreamManager(nc);

    const timers = await jsm.streams.info(t.streams.timers.name);
    expect(timers.config.allow_msg_ttl).toBe(true);
    expect(timers.config.max_msgs_per_subject).toBe(1);
    expect(timers.config.allow_atomic).toBe(true);
    expect((await jsm.streams.info("KV_followup_plans")).config.allow_atomic).toBe(true);
    expect((await jsm.streams.info("KV_leads")).config.allow_atomic ?? false).toBe(false);
    expect(timers.config.subject_delete_marker_ttl).toBe(nanos(t.streams.timers.subjectDeleteMarkerTtlMs));
    expect(timers.config.republish).toEqual({
      src: "followup.timer.>",
      dest: "followup.fired.>",
      headers_only: true,
    });

    expect((await jsm.streams.info(t.streams.results.name)).config.allow_atomic).toBe(true);
    const queue = await jsm.streams.info("FOLLOWUPS");
    expect(queue.config.retention).toBe("workqueue");
    expect(queue.config.subjects).toEqual(["followup.due.>"]);

    for (const spec of Object.values(t.consumers)) {
      const info = await jsm.consumers.info(spec.stream, spec.durable);
      expect(info.config.ack_policy).toBe("explicit");
      expect(info.config.max_ack_pending).toBe(spec.maxAckPending);
    }
    const kvm = new Kvm(nc);
    for (const spec of Object.values(t.buckets)) {
      const kv = await kvm.open(spec.bucket);
      expect((await kv.status()).history).toBe(spec.history);
    }
  });

  it("is idempotent, and concurrent runs (several copies starting at once) agree", async () => {
    const t = topology();
    await Promise.all([provisionTopology(nc, t), provisionTopology(nc, t), provisionTopology(nc, t)]);
    const jsm = await jetstreamManager(nc);
    const names: string[] = [];
    for await (const name of jsm.streams.names()) names.push(name);
    expect(names.sort()).toEqual(
      [
        "FOLLOWUPS",
        "FOLLOWUP_DLQ",
        "FOLLOWUP_RESULTS",
        "FOLLOWUP_TIMERS",
        "KV_followup_plans",
        "KV_hook_receipts",
        "KV_leads",
        "KV_sequences",
        "KV_templates",
        "KV_channel_settings",
        "KV_suppressions",
        "KV_reports",
        "KV_models",
        "LEADS",
      ].sort(),
    );
  });

  it("deletes a retired durable of an earlier version (scheduler-markers), so that two consumers never both fire markers", async () => {
    const t = topology();
    await provisionTopology(nc, t);
    const jsm = await jetstreamManager(nc);
    const [retired] = t.retiredConsumers;
    // What a server that ran the previous version still has.
    await jsm.consumers.add(retired.stream, {
      durable_name: retired.durable,
      ack_policy: AckPolicy.Explicit,
      filter_subject: "followup.timer.>",
    });
    // Check-only (a service identity) leaves it: only `pnpm provision` may delete consumers.
    await provisionTopology(nc, t, { checkOnly: true });
    expect((await jsm.consumers.info(retired.stream, retired.durable)).name).toBe("scheduler-markers");

    await provisionTopology(nc, t);
    await expect(jsm.consumers.info(retired.stream, retired.durable)).rejects.toThrow(/consumer not found/);
    const durables: string[] = [];
    for await (const c of jsm.consumers.list(t.streams.timers.name)) durables.push(c.name);
    expect(durables).toEqual(["dispatcher-markers"]);
    // Gone already: provisioning again is fine.
    await provisionTopology(nc, t);
  });

  it("updates a consumer whose mutable settings changed", async () => {
    const base = topology();
    await provisionTopology(nc, base);
    const changed = topology();
    changed.consumers.dispatch.maxAckPending = 17;
    await provisionTopology(nc, changed, { select: { consumers: ["dispatch"] } });
    const jsm = await jetstreamManager(nc);
    expect((await jsm.consumers.info("FOLLOWUPS", "dispatcher")).config.max_ack_pending).toBe(17);
  });

  it("refuses to silently change a stream's retention", async () => {
    const t = topology({ queue: "retention_test" });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: "RETENTION_TEST",
      subjects: ["retention.test"],
      retention: "limits" as never,
    });
    await expect(
      provisionTopology(nc, t, { select: { streams: ["followups"], consumers: [], buckets: [] } }),
    ).rejects.toThrow(/retention cannot change in place/);
    await jsm.streams.delete("RETENTION_TEST");
  });

  it("only checks with checkOnly: a missing or differing part is reported, never created or changed", async () => {
    // Its own subjects: the other tests' FOLLOWUPS holds followup.due.>.
    const t = topology({ queue: "check_only" });
    t.streams.followups.subjects = ["check.only.>"] as never;
    const jsm = await jetstreamManager(nc);
    const select = { streams: ["followups" as const], consumers: [], buckets: [] };
    await expect(provisionTopology(nc, t, { select, checkOnly: true, attempts: 1 })).rejects.toThrow(
      /stream CHECK_ONLY does not exist; provision the topology first/,
    );
    await expect(jsm.streams.info("CHECK_ONLY")).rejects.toThrow(/stream not found/);

    await provisionTopology(nc, t, { select });
    await provisionTopology(nc, t, { select, checkOnly: true, attempts: 1 });
    const changed = topology({ queue: "check_only" });
    changed.streams.followups.subjects = ["check.only.>"] as never;
    changed.streams.followups.duplicateWindowMs = 60_000;
    await expect(provisionTopology(nc, changed, { select, checkOnly: true, attempts: 1 })).rejects.toThrow(
      /stream CHECK_ONLY differs from the topology in duplicate_window/,
    );
    expect((await jsm.streams.info("CHECK_ONLY")).config.duplicate_window).toBe(nanos(10 * 60_000));
    await jsm.streams.delete("CHECK_ONLY");
  });

  it("gives a bucket created without allow_atomic (before it was in the topology) the setting; checkOnly reports it", async () => {
    const t = topology();
    t.buckets.plans.bucket = "atomic_later";
    const jsm = await jetstreamManager(nc);
    await new Kvm(nc).create("atomic_later", { history: 5 });
    const select = { streams: [], consumers: [], buckets: ["plans" as const] };
    await expect(provisionTopology(nc, t, { select, checkOnly: true, attempts: 1 })).rejects.toThrow(
      /bucket atomic_later differs from the topology in allow_atomic/,
    );
    expect((await jsm.streams.info("KV_atomic_later")).config.allow_atomic ?? false).toBe(false);
    await provisionTopology(nc, t, { select });
    const info = await jsm.streams.info("KV_atomic_later");
    expect(info.config.allow_atomic).toBe(true);
    expect(info.config.max_msgs_per_subject, "the bucket's own settings were kept").toBe(5);
    await provisionTopology(nc, t, { select, checkOnly: true, attempts: 1 });
    await jsm.streams.delete("KV_atomic_later");
  });
});
