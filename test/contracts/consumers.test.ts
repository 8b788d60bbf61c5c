// Every consumer against its contract, with the services running as processes: a valid event
// carrying unknown extra fields is processed (consumers accept what a newer producer adds); an
// event that breaks its contract is terminated, logged at error on the service's stdout, counted
// in its /metrics, and does not hold up the event published after it.

import { randomUUID } from "node:crypto";
import {
  encodeEvent,
  type FollowupPlan,
  idempotencyKey,
  leadKey,
  makeEvent,
  type StoredLead,
  subjects,
  type Topology,
  topology,
} from "@followup/contracts";
import { waitFor } from "@followup/nats-harness";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Engine,
  putLead,
  REFERENCE_LEADS,
  type ServiceName,
  startEngine,
  storedLead,
} from "../support/index.js";

const TENANT = "acme";
/** Long enough that no timer of the engine's own fires during the test: only what a case plants does. */
const SCHEDULES = "1h";

let engine: Engine;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let leads: KV;
let plans: KV;
const topo: Topology = topology();

beforeAll(async () => {
  engine = await startEngine({ schedules: SCHEDULES });
  nc = await connect({ servers: engine.natsUrl, ...engine.as() });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  const kvm = new Kvm(nc);
  leads = await kvm.open(topo.buckets.leads.bucket);
  plans = await kvm.open(topo.buckets.plans.bucket);
}, 90_000);

afterAll(async () => {
  await nc?.close();
  await engine?.stop();
});

/** What a newer producer might add: an envelope extension and a field inside `data`. */
function withExtraFields<E extends { data: object }>(event: E): E {
  return {
    ...event,
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    data: { ...event.data, channel_hint: { sms: false } },
  };
}

function newLeadId(): string {
  return `contract-${randomUUID().slice(0, 8)}`;
}

/** The lead as lead-intake stores it, plus a field this version does not know. */
async function storeLead(leadId: string): Promise<void> {
  const lead = storedLead(TENANT, leadId, {
    details: "Urgent: need to book",
    model_version: "contract-test",
  });
  await putLead(leads, { ...lead, source_campaign: "spring" } as StoredLead);
}

/** Timers held for a lead (SCHEDULES is one step). */
async function timersOf(leadId: string): Promise<number> {
  const info = await jsm.streams.info(topo.streams.timers.name, {
    subjects_filter: subjects.followupsOfLead("timer", TENANT, leadId),
  });
  return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
}

async function readPlan(leadId: string): Promise<FollowupPlan | null> {
  const entry = await plans.get(leadKey({ tenant: TENANT, leadId }));
  return entry?.operation === "PUT" ? (entry.json() as FollowupPlan) : null;
}

function scoredEvent(leadId: string) {
  return makeEvent("lead.scored.v1", {
    source: "/lead-intake",
    subject: leadId,
    tenant: TENANT,
    data: {
      lead_id: leadId,
      created_at: new Date().toISOString(),
      pred_prob: 0.9,
      score: 0.8,
      intent: "lead_capture",
      sentiment: "positive",
      urgency: "high",
      model_version: "contract-test",
    },
  });
}

function bookedOutcome(leadId: string) {
  return makeEvent("lead.outcome.v1", {
    source: "/lead-intake",
    subject: leadId,
    tenant: TENANT,
    data: {
      lead_id: leadId,
      outcome: "booked",
      recorded_at: new Date().toISOString(),
      stops_followups: true,
    },
  });
}

function dueEvent(leadId: string, dueAt: Date) {
  return makeEvent("followup.due.v1", {
    source: "/scheduler",
    subject: `${leadId}/1`,
    tenant: TENANT,
    data: {
      lead_id: leadId,
      step: 1,
      delay_s: 1,
      due_at: dueAt.toISOString(),
      idempotency_key: idempotencyKey({ tenant: TENANT, leadId, step: 1 }),
      channel: "hook",
      lead_created_at: new Date(dueAt.getTime() - 1000).toISOString(),
      pred_prob: 0.9,
      fired_at: dueAt.toISOString(),
      replays: 0,
    },
  });
}

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** One consumer: how to feed it a valid event with extra fields and an invalid one, and where it counts and logs. */
interface ConsumerCase {
  durable: string;
  service: Extract<ServiceName, "scheduler" | "dispatcher">;
  counter: { name: string; labels: Record<string, string> };
  logMsg: string;
  /** Publishes a valid event with unknown fields; resolves with a probe that is true once it was processed. */
  publishValid(): Promise<{ processed: () => Promise<boolean>; description: string }>;
  /** Publishes (or plants) an event that breaks its contract; resolves with the subject it arrives on. */
  publishInvalid(): Promise<string>;
}

const CASES: ConsumerCase[] = [
  {
    durable: "scheduler-scored",
    service: "scheduler",
    counter: { name: "scheduler_invalid_events_total", labels: { consumer: "scored" } },
    logMsg: "invalid_event_terminated",
    async publishValid() {
      const leadId = newLeadId();
      await storeLead(leadId);
      await js.publish(
        subjects.leadScored(TENANT, leadId),
        encodeEvent(withExtraFields(scoredEvent(leadId))),
      );
      return {
        description: `the scheduler to plan ${leadId} and store its timer`,
        processed: async () => (await timersOf(leadId)) === 1,
      };
    },
    async publishInvalid() {
      const leadId = newLeadId();
      const event = scoredEvent(leadId);
      const subject = subjects.leadScored(TENANT, leadId);
      await js.publish(subject, json({ ...event, data: { ...event.data, pred_prob: "very likely" } }));
      return subject;
    },
  },
  {
    durable: "scheduler-outcomes",
    service: "scheduler",
    counter: { name: "scheduler_invalid_events_total", labels: { consumer: "outcomes" } },
    logMsg: "invalid_event_terminated",
    async publishValid() {
      const { lead_id: leadId } = await engine.api.postLead(REFERENCE_LEADS.high);
      await waitFor(async () => (await timersOf(leadId)) === 1, {
        description: `the scheduler to plan ${leadId}`,
      });
      const outcome = bookedOutcome(leadId);
      await js.publish(subjects.leadOutcome(TENANT, leadId), encodeEvent(withExtraFields(outcome)));
      return {
        description: `the booked outcome to cancel the plan of ${leadId}`,
        processed: async () => (await readPlan(leadId))?.cancelled?.reason === "outcome:booked",
      };
    },
    async publishInvalid() {
      const leadId = newLeadId();
      const subject = subjects.leadOutcome(TENANT, leadId);
      const outcome = bookedOutcome(leadId);
      await js.publish(subject, json({ ...outcome, data: { ...outcome.data, outcome: "maybe-later" } }));
      return subject;
    },
  },
  {
    durable: "dispatcher-markers",
    service: "dispatcher",
    counter: { name: "dispatcher_invalid_events_total", labels: {} },
    logMsg: "invalid_marker_terminated",
    async publishValid() {
      // A plan and a 1 s timer planted as the scheduler would, each with a field it does not know.
      const leadId = newLeadId();
      await storeLead(leadId);
      const now = new Date();
      const dueAt = new Date(now.getTime() + 1000).toISOString();
      const plan = {
        lead_id: leadId,
        tenant: TENANT,
        lead_created_at: now.toISOString(),
        pred_prob: 0.9,
        planned_at: now.toISOString(),
        steps: [{ step: 1, delay_s: 1, due_at: dueAt, state: "pending", planner: "v2" }],
        planner_version: 2,
      };
      await plans.create(leadKey({ tenant: TENANT, leadId }), JSON.stringify(plan));
      const timer = makeEvent("followup.timer.v1", {
        source: "/scheduler",
        subject: `${leadId}/1`,
        tenant: TENANT,
        data: { lead_id: leadId, step: 1, delay_s: 1, due_at: dueAt, ttl_s: 1 },
      });
      await js.publish(subjects.followupTimer(TENANT, leadId, 1), encodeEvent(withExtraFields(timer)), {
        msgID: `${leadId}:1`,
        ttl: "1",
      });
      return {
        description: `the marker of ${leadId}'s timer to become a delivered follow-up`,
        processed: async () => engine.hook!.delivered.has(`${TENANT}:${leadId}:1`),
      };
    },
    async publishInvalid() {
      // Step 0 breaks the subject contract; the dispatcher sees it when its marker comes, 1 s later.
      const subject = `followup.timer.${TENANT}.${newLeadId()}.0`;
      await js.publish(subject, json({ not: "a timer" }), { ttl: "1" });
      return subject;
    },
  },
  {
    durable: "dispatcher",
    service: "dispatcher",
    counter: { name: "dispatcher_invalid_events_total", labels: {} },
    logMsg: "invalid_due_event_terminated",
    async publishValid() {
      const leadId = newLeadId();
      await storeLead(leadId);
      const due = withExtraFields(dueEvent(leadId, new Date()));
      await js.publish(subjects.followupDue(TENANT, leadId, 1), encodeEvent(due), { msgID: `${leadId}:1` });
      return {
        description: `the dispatcher to deliver ${leadId}'s follow-up`,
        processed: async () => engine.hook!.delivered.has(`${TENANT}:${leadId}:1`),
      };
    },
    async publishInvalid() {
      const leadId = newLeadId();
      const subject = subjects.followupDue(TENANT, leadId, 1);
      const due = dueEvent(leadId, new Date());
      await js.publish(subject, json({ ...due, data: { ...due.data, due_at: "tomorrow morning" } }));
      return subject;
    },
  },
];

async function consumerSettled(durable: string): Promise<boolean> {
  const spec = Object.values(topo.consumers).find((c) => c.durable === durable)!;
  const info = await jsm.consumers.info(spec.stream, spec.durable);
  return info.num_pending === 0 && info.num_ack_pending === 0;
}

describe.each(CASES)("consumer $durable", (c) => {
  const service = () => engine.services[c.service][0]!;

  it("processes a valid event that carries unknown extra fields", async () => {
    const before = (await service().metrics()).value(c.counter.name, c.counter.labels);
    const valid = await c.publishValid();
    await waitFor(valid.processed, { description: valid.description, timeoutMs: 10_000 });
    await waitFor(() => consumerSettled(c.durable), { description: `${c.durable} to have nothing pending` });
    expect((await service().metrics()).value(c.counter.name, c.counter.labels)).toBe(before);
  });

  it("terminates an invalid event, logs it at error, counts it, and goes on with the next", async () => {
    const before = (await service().metrics()).value(c.counter.name, c.counter.labels);
    const subject = await c.publishInvalid();
    const valid = await c.publishValid();

    await waitFor(valid.processed, {
      description: `${valid.description}, after an invalid event`,
      timeoutMs: 10_000,
    });
    const logged = await service().waitForLog(c.logMsg, (line) => line.subject === subject);
    expect(logged.level).toBe("error");
    await waitFor(
      async () => (await service().metrics()).value(c.counter.name, c.counter.labels) === before + 1,
      {
        description: `${c.counter.name} to count the invalid event`,
      },
    );
    // Terminated, not left to come back: nothing pending, and it was logged (and counted) once.
    await waitFor(() => consumerSettled(c.durable), { description: `${c.durable} to have nothing pending` });
    expect(
      service()
        .logsNamed(c.logMsg)
        .filter((line) => line.subject === subject),
    ).toHaveLength(1);
    expect((await service().metrics()).value(c.counter.name, c.counter.labels)).toBe(before + 1);
  });
});
