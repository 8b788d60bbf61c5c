import {
  authorizationConfig,
  bucketKeySubject,
  bucketStream,
  IDENTITIES,
  type Identity,
  inboxPrefixOf,
  leadKey,
  MARKER_REASON_HEADER,
  SERVICE_IDENTITIES,
  subjects,
  topology,
} from "@followup/contracts";
import { type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection, PermissionViolationError, type Status } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  isPermissionViolation,
  prepareTopology,
  provisionTopology,
  publishAtomic,
  publishHeaders,
} from "../src/index.js";

/**
 * The broker identities of permissionsFor, enforced by a real nats-server running the generated
 * `authorization` block: what each identity must do works, what it must not do is refused.
 */

const topo = topology();
const passwords = Object.fromEntries(IDENTITIES.map((id) => [id, `secret-of-${id}`])) as Record<
  Identity,
  string
>;

let server: NatsServer;
const connections = new Map<Identity, NatsConnection>();
/** Every status error each connection saw: a refused core publish or subscribe shows up only here. */
const statusErrors = new Map<Identity, Error[]>();

function connectAs(identity: Identity): Promise<NatsConnection> {
  return connect({
    servers: server.url,
    user: identity,
    pass: passwords[identity],
    inboxPrefix: inboxPrefixOf(identity),
    maxReconnectAttempts: 0,
  });
}

function as(identity: Identity): NatsConnection {
  const nc = connections.get(identity);
  if (!nc) throw new Error(`no connection for ${identity}`);
  return nc;
}

async function follow(identity: Identity, nc: NatsConnection): Promise<void> {
  const errors: Error[] = [];
  statusErrors.set(identity, errors);
  for await (const status of nc.status() as AsyncIterable<Status>) {
    if (status.type === "error") errors.push(status.error);
  }
}

/** Waits for the server to report a permissions violation on `subject` to this identity's connection. */
function violationReported(identity: Identity, operation: "publish" | "subscription", subject: string) {
  return waitFor(
    () =>
      statusErrors
        .get(identity)
        ?.some(
          (e) => e instanceof PermissionViolationError && e.operation === operation && e.subject === subject,
        ),
    { description: `a permissions violation for ${operation} to ${subject} (as ${identity})` },
  );
}

async function expectRefused(action: Promise<unknown>): Promise<void> {
  const outcome = await action.then(
    () => new Error("expected a permissions violation, but the action succeeded"),
    (err: unknown) => err,
  );
  expect(isPermissionViolation(outcome), String(outcome)).toBe(true);
}

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

beforeAll(async () => {
  const users = IDENTITIES.map((identity) => ({ identity, password: passwords[identity] }));
  server = await startNatsServer({ extraConfig: authorizationConfig(users, topo) });
  for (const identity of IDENTITIES) {
    const nc = await connectAs(identity);
    connections.set(identity, nc);
    void follow(identity, nc);
  }
  await provisionTopology(as("provision"), topo);
});

afterAll(async () => {
  for (const nc of connections.values()) await nc.close();
  await server?.cleanup();
});

describe("broker identities against a real nats-server", () => {
  it("refuses a client without credentials, or with another identity's password", async () => {
    await expect(connect({ servers: server.url, maxReconnectAttempts: 0 })).rejects.toThrow(/authoriz/i);
    await expect(
      connect({ servers: server.url, user: "tail", pass: passwords.scheduler, maxReconnectAttempts: 0 }),
    ).rejects.toThrow(/authoriz/i);
  });

  it.each(SERVICE_IDENTITIES)("%s finds what it uses provisioned, checking only", async (identity) => {
    await prepareTopology(as(identity), topo, { identity, provision: false, attempts: 1 });
  });

  it.each(SERVICE_IDENTITIES)("%s may not provision the topology, and is told why", async (identity) => {
    await expect(
      prepareTopology(as(identity), topo, { identity, provision: true, attempts: 1 }),
    ).rejects.toThrow(/NATS_PROVISION=false/);
  });

  describe("lead-intake", () => {
    it("writes a lead and publishes lead.scored", async () => {
      const nc = as("lead-intake");
      const leads = await new Kvm(nc).open(topo.buckets.leads.bucket);
      const key = leadKey({ tenant: "acme", leadId: "L-intake" });
      await leads.create(key, encode({ lead_id: "L-intake" }));
      expect((await leads.get(key))?.revision).toBeGreaterThan(0);
      const ack = await jetstream(nc).publish(subjects.leadScored("acme", "L-intake"), encode({}));
      expect(ack.stream).toBe(topo.streams.leads.name);
    });

    it("writes a sequence with compare-and-set, reads it, and lists a tenant's with one direct get", async () => {
      const nc = as("lead-intake");
      const kv = await new Kvm(nc).open(topo.buckets.sequences.bucket);
      const revision = await kv.create("acme.welcome", encode({ steps: [] }));
      const updated = await kv.update("acme.welcome", encode({ steps: [1] }), revision);
      await kv.put("acme.recap", encode({ steps: [2] }));
      await kv.put("globex.welcome", encode({ steps: [3] }));
      expect((await kv.get("acme.welcome"))?.revision).toBe(updated);
      const jsm = await jetstreamManager(nc);
      const listed: string[] = [];
      const last = await jsm.direct.getLastMessagesFor(bucketStream(topo.buckets.sequences.bucket), {
        multi_last: [`$KV.${topo.buckets.sequences.bucket}.acme.*`],
      });
      for await (const message of last) listed.push(message.subject);
      expect(listed.sort()).toEqual(["$KV.sequences.acme.recap", "$KV.sequences.acme.welcome"]);
      await kv.delete("acme.recap", { previousSeq: (await kv.get("acme.recap"))!.revision });
    });

    it("may not watch the sequences bucket (the scheduler does)", async () => {
      const kv = await new Kvm(as("lead-intake")).open(topo.buckets.sequences.bucket);
      await expectRefused(kv.watch());
    });

    it("may not purge the timer stream", async () => {
      const jsm = await jetstreamManager(as("lead-intake"));
      await expectRefused(jsm.streams.purge(topo.streams.timers.name, { filter: "followup.timer.acme.>" }));
    });

    it("may not publish a timer nor pull from the dispatcher's consumer", async () => {
      const nc = as("lead-intake");
      await expectRefused(jetstream(nc).publish(subjects.followupTimer("acme", "L1", 1), encode({})));
      const timer = (step: number) => ({
        subject: subjects.followupTimer("acme", "L1", step),
        data: encode({}),
        headers: publishHeaders({ ttl: "3600" }),
      });
      await expectRefused(publishAtomic(jetstream(nc), [timer(1), timer(2)]));
      const { stream, durable } = topo.consumers.dispatch;
      await expectRefused(jetstream(nc).consumers.get(stream, durable));
    });
  });

  describe("scheduler", () => {
    it("creates a timer with Nats-TTL, and writes and reads a plan", async () => {
      const nc = as("scheduler");
      const ack = await jetstream(nc).publish(subjects.followupTimer("acme", "L-sched", 1), encode({}), {
        ttl: "1h",
      });
      expect(ack.stream).toBe(topo.streams.timers.name);
      const plans = await new Kvm(nc).open(topo.buckets.plans.bucket);
      const key = leadKey({ tenant: "acme", leadId: "L-sched" });
      await plans.put(key, encode({ steps: [] }));
      expect((await plans.get(key))?.json()).toEqual({ steps: [] });
      const purged = await (await jetstreamManager(nc)).streams.purge(topo.streams.timers.name, {
        filter: subjects.followupsOfLead("timer", "acme", "L-sched"),
      });
      expect(purged.purged).toBe(1);
    });

    it("watches the sequences bucket: lead-intake's edit reaches it", async () => {
      const kv = await new Kvm(as("scheduler")).open(topo.buckets.sequences.bucket);
      const watch = await kv.watch({ key: "acme.*" });
      const seen: string[] = [];
      const done = (async () => {
        for await (const entry of watch) {
          seen.push(`${entry.key}@${entry.operation}`);
          if (entry.key === "acme.watched") return;
        }
      })();
      const writer = await new Kvm(as("lead-intake")).open(topo.buckets.sequences.bucket);
      await writer.put("acme.watched", encode({ steps: [] }));
      await waitFor(() => seen.includes("acme.watched@PUT"), {
        description: "the scheduler's watch to see the sequence lead-intake wrote",
      });
      watch.stop();
      await done;
      expect((await kv.get("acme.watched"))?.json()).toEqual({ steps: [] });
    });

    it("may not write the sequences bucket", async () => {
      const kv = await new Kvm(as("scheduler")).open(topo.buckets.sequences.bucket);
      await expectRefused(kv.put("acme.rogue", encode({})));
    });

    it("publishes atomic batches of timers and of plans (the batch's messages and its commit's reply)", async () => {
      const nc = as("scheduler");
      const js = jetstream(nc);
      const refusedBefore = statusErrors.get("scheduler")?.length;
      const refs = [1, 2, 3].map((i) => ({ tenant: "acme", leadId: `L-batch${i}` }));
      const timers = await publishAtomic(
        js,
        refs.map((ref) => ({
          subject: subjects.followupTimer(ref.tenant, ref.leadId, 1),
          data: encode({}),
          headers: publishHeaders({ ttl: "3600", msgId: `${ref.leadId}:1`, expectLastSubjectSequence: 0 }),
        })),
      );
      expect(timers).toMatchObject({ stream: topo.streams.timers.name, count: 3 });
      const plans = await publishAtomic(
        js,
        refs.map((ref) => ({
          subject: bucketKeySubject(topo.buckets.plans.bucket, leadKey(ref)),
          data: encode({ steps: [] }),
          headers: publishHeaders({ expectLastSubjectSequence: 0 }),
        })),
      );
      expect(plans).toMatchObject({ stream: bucketStream(topo.buckets.plans.bucket), count: 3 });
      const kv = await new Kvm(nc).open(topo.buckets.plans.bucket);
      expect((await kv.get(leadKey(refs[2]!)))?.json()).toEqual({ steps: [] });
      expect(statusErrors.get("scheduler")?.length, "a core publish of the batch was refused").toBe(
        refusedBefore,
      );
    });

    it("may not write the leads bucket, nor read the hook receipts", async () => {
      const kvm = new Kvm(as("scheduler"));
      const leads = await kvm.open(topo.buckets.leads.bucket);
      await expectRefused(leads.put(leadKey({ tenant: "acme", leadId: "L1" }), encode({})));
      const receipts = await kvm.open(topo.buckets.receipts.bucket);
      await expectRefused(receipts.get("acme.L1.x"));
    });

    it("may not create a stream", async () => {
      const jsm = await jetstreamManager(as("scheduler"));
      await expectRefused(jsm.streams.add({ name: "ROGUE", subjects: ["rogue.>"] }));
    });
  });

  describe("dispatcher", () => {
    it("fetches a due follow-up from its consumer and acks it", async () => {
      // A replayed dead letter: lead-intake is the one writer of the work queue.
      await jetstream(as("lead-intake")).publish(subjects.followupDue("acme", "L-disp", 1), encode({}));
      const { stream, durable } = topo.consumers.dispatch;
      const consumer = await jetstream(as("dispatcher")).consumers.get(stream, durable);
      const batch = await consumer.fetch({ max_messages: 1, expires: 5_000 });
      const received: string[] = [];
      for await (const msg of batch) {
        received.push(msg.subject);
        expect(await msg.ackAck()).toBe(true);
      }
      expect(received).toEqual([subjects.followupDue("acme", "L-disp", 1)]);
    });

    it("consumes a timer's marker from its durable, reads the plan and stores results in an atomic batch", async () => {
      const timer = subjects.followupTimer("acme", "L-fire", 1);
      await jetstream(as("scheduler")).publish(timer, encode({}), { ttl: "1s" });
      const { stream, durable } = topo.consumers.dispatchMarkers;
      const consumer = await jetstream(as("dispatcher")).consumers.get(stream, durable);
      const marker = await waitFor(
        async () => {
          const msg = await consumer.next({ expires: 2_000 });
          if (!msg) return null;
          msg.ack();
          return msg.headers?.get(MARKER_REASON_HEADER) === "MaxAge" ? msg.subject : null;
        },
        { description: "the timer's marker at the dispatcher", timeoutMs: 10_000 },
      );
      expect(marker).toBe(timer);
      const plans = await new Kvm(as("dispatcher")).open(topo.buckets.plans.bucket);
      expect(await plans.get(leadKey({ tenant: "acme", leadId: "L-fire" }))).toBeNull();
      const ack = await publishAtomic(
        jetstream(as("dispatcher")),
        [1, 2].map((step) => ({
          subject: subjects.followupResult("acme", "L-fire", step),
          data: encode({}),
          headers: publishHeaders({ msgId: `L-fire:${step}:result:0:1` }),
        })),
      );
      expect(ack.count).toBe(2);
      await expectRefused(plans.put(leadKey({ tenant: "acme", leadId: "L-fire" }), encode({})));
    });

    it("may not publish lead.scored", async () => {
      await expectRefused(jetstream(as("dispatcher")).publish(subjects.leadScored("acme", "L1"), encode({})));
    });

    it("may not subscribe to another identity's inbox", async () => {
      const subject = `${inboxPrefixOf("lead-intake")}.>`;
      as("dispatcher").subscribe(subject);
      await violationReported("dispatcher", "subscription", subject);
    });
  });

  describe("tail", () => {
    it("receives the republished fired marker and the results on followup.>", async () => {
      const sub = as("tail").subscribe("followup.>");
      await as("tail").flush();
      const fired = subjects.followupFired("acme", "L-tail", 1);
      const result = subjects.followupResult("acme", "L-tail", 1);
      const seen = new Set<string>();
      // The JetStream publishes themselves pass by too (followup.timer.*): wait for the two wanted.
      const done = (async () => {
        for await (const msg of sub) {
          seen.add(msg.subject);
          if (seen.has(fired) && seen.has(result)) return;
        }
      })();
      await jetstream(as("scheduler")).publish(subjects.followupTimer("acme", "L-tail", 1), encode({}), {
        ttl: "1h",
      });
      await jetstream(as("dispatcher")).publish(result, encode({}));
      await waitFor(() => seen.has(fired) && seen.has(result), {
        description: "the fired marker and the result to reach tail",
      });
      sub.unsubscribe();
      await done;
    });

    it("may not read the leads bucket", async () => {
      const leads = await new Kvm(as("tail")).open(topo.buckets.leads.bucket);
      await expectRefused(leads.get(leadKey({ tenant: "acme", leadId: "L-intake" })));
    });

    it("may not publish: lead.scored stored nothing", async () => {
      const jsm = await jetstreamManager(as("lead-intake"));
      const before = (await jsm.streams.info(topo.streams.leads.name)).state.messages;
      const subject = subjects.leadScored("acme", "L-forged");
      as("tail").publish(subject, encode({}));
      await violationReported("tail", "publish", subject);
      expect((await jsm.streams.info(topo.streams.leads.name)).state.messages).toBe(before);
    });

    it("may not call the JetStream API", async () => {
      await expectRefused(jetstreamManager(as("tail")));
    });
  });

  describe("provision", () => {
    it("may not touch a message: no lead.scored, no bucket read", async () => {
      const nc = as("provision");
      await expectRefused(jetstream(nc).publish(subjects.leadScored("acme", "L1"), encode({})));
      const leads = await new Kvm(nc).open(topo.buckets.leads.bucket);
      await expectRefused(leads.get(leadKey({ tenant: "acme", leadId: "L-intake" })));
    });
  });
});
