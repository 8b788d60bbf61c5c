import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import {
  encodeEvent,
  type FollowupDueData,
  idempotencyKey,
  makeEvent,
  subjects,
  type Topology,
  topology,
} from "@followup/contracts";
import type { NatsServer } from "@followup/nats-harness";
import {
  createLogger,
  createMetricsRegistry,
  type Env,
  parseWebhookSecret,
  provisionTopology,
  Readiness,
} from "@followup/service-kit";
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { buildApp } from "../src/app.js";
import { ApiKeys } from "../src/auth.js";
import { Broker } from "../src/broker.js";
import { loadLeadIntakeConfig } from "../src/config.js";
import type { EventPublisher } from "../src/deps.js";
import { JetStreamPublisher } from "../src/leads/publisher.js";
import { createLeadIntakeMetrics, type LeadIntakeMetrics } from "../src/metrics.js";
import { LeadOutbox } from "../src/outbox/outbox.js";
import { OutboxPublisher } from "../src/outbox/publisher.js";
import { loadDefaultConversionModel } from "../src/scoring/scoring.js";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const MAIN = `${REPO_ROOT}services/lead-intake/src/main.ts`;
export const SECRET = `whsec_${Buffer.alloc(32, 3).toString("base64")}`;
export const KEY = parseWebhookSecret(SECRET);
export const ACME_KEY = "acme-test-key-5f0c2b9e";
export const GLOBEX_KEY = "globex-test-key-81d4aa07";
export const API_KEYS = `${ACME_KEY}:acme,${GLOBEX_KEY}:globex`;

export const ALEX = {
  name: "Alex Rivera",
  phone: "+1-555-0199",
  details: "Urgent: Need to book immediately for tomorrow morning. Budget $5000, credit card ready.",
};
export const BOB = {
  name: "Bob Smith",
  phone: "+1-555-0100",
  details: "Just browsing, not sure what I want.",
};

export interface Intake {
  app: FastifyInstance;
  broker: Broker;
  topology: Topology;
  metrics: LeadIntakeMetrics;
  registry: Registry;
  readiness: Readiness;
  /** The connection the app uses (undefined when started without NATS). */
  nc: NatsConnection | undefined;
  jsm: JetStreamManager | undefined;
  /** The fail-open outbox publisher, when started with `outbox`. */
  outbox: OutboxPublisher | undefined;
  /** Every log line the app wrote, as text. */
  logs: string[];
  close(): Promise<void>;
}

export interface IntakeOptions {
  /** A running nats-server: the topology is provisioned and the app attached to it. */
  server?: NatsServer;
  env?: Env;
  now?: () => Date;
  publisher?: (broker: Broker) => EventPublisher;
  /** Put the durable outbox in `dir` behind the JetStream publisher, as main.ts does. */
  outbox?: { dir: string; maxLeads?: number; retryMs?: number; batchSize?: number };
}

/** lead-intake in this process, its logs captured, attached to `server` when one is given. */
export async function startIntake(options: IntakeOptions = {}): Promise<Intake> {
  const config = loadLeadIntakeConfig({
    API_KEYS,
    FOLLOWUP_HOOK_SECRET: SECRET,
    NATS_URL: options.server?.url ?? "nats://127.0.0.1:1",
    LOG_LEVEL: "info",
    ...options.env,
  });
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      logs.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  const logger = createLogger({ service: "lead-intake", level: config.LOG_LEVEL, destination });
  const registry = createMetricsRegistry("lead-intake");
  const metrics = createLeadIntakeMetrics(registry);
  const readiness = new Readiness();
  const topo = topology({ queue: config.FOLLOWUP_QUEUE });
  const broker = new Broker(topo, { timeoutMs: config.PUBLISH_TIMEOUT_MS });
  let nc: NatsConnection | undefined;
  let jsm: JetStreamManager | undefined;
  if (options.server) {
    nc = await connect({ servers: options.server.url, name: "lead-intake-test" });
    await provisionTopology(nc, topo);
    await broker.attach(nc);
    jsm = await jetstreamManager(nc);
    readiness.set("nats", true);
  } else {
    readiness.set("nats", false, "connecting");
  }
  const jetStream = new JetStreamPublisher(broker, { timeoutMs: config.PUBLISH_TIMEOUT_MS });
  const direct = options.publisher?.(broker) ?? jetStream;
  let outbox: OutboxPublisher | undefined;
  if (options.outbox) {
    const opened = await LeadOutbox.open({
      dir: options.outbox.dir,
      maxLeads: options.outbox.maxLeads ?? 10_000,
    });
    outbox = new OutboxPublisher({
      broker,
      direct: jetStream,
      outbox: opened.outbox,
      metrics,
      readiness,
      logger,
      ...(options.outbox.retryMs !== undefined ? { retryMs: options.outbox.retryMs } : {}),
      ...(options.outbox.batchSize !== undefined ? { batchSize: options.outbox.batchSize } : {}),
    });
    outbox.start();
  }
  const app = await buildApp({
    config,
    logger,
    registry,
    metrics,
    readiness,
    broker,
    publisher: outbox ?? direct,
    ...(outbox ? { outbox } : {}),
    scorer: loadDefaultConversionModel(logger),
    apiKeys: new ApiKeys(config.API_KEYS),
    hookKey: config.FOLLOWUP_HOOK_SECRET,
    now: options.now ?? (() => new Date()),
  });
  await app.ready();
  return {
    app,
    broker,
    topology: topo,
    metrics,
    registry,
    readiness,
    nc,
    jsm,
    outbox,
    logs,
    async close() {
      await app.close();
      await outbox?.stop();
      if (nc && !nc.isClosed()) await nc.close();
    },
  };
}

/** Headers of an authenticated JSON call. */
export function jsonHeaders(key = ACME_KEY): Record<string, string> {
  return { "content-type": "application/json", "x-api-key": key };
}

/** Messages stored in a stream. */
export async function streamMessages(jsm: JetStreamManager, stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}

/** A due follow-up as the scheduler publishes it (due now). */
export function dueData(tenant: string, leadId: string, step: number): FollowupDueData {
  const now = new Date().toISOString();
  return {
    lead_id: leadId,
    step,
    delay_s: 60 * step,
    due_at: now,
    idempotency_key: idempotencyKey({ tenant, leadId, step }),
    channel: "hook",
    lead_created_at: now,
    pred_prob: 0.9,
    fired_at: now,
    replays: 0,
  };
}

/** Publishes the dead letter of a follow-up whose 8 attempts all got HTTP 503, as the dispatcher would. */
export async function publishDeadLetter(
  nc: NatsConnection,
  tenant: string,
  leadId: string,
  step: number,
): Promise<void> {
  const due = dueData(tenant, leadId, step);
  const event = makeEvent("followup.dead.v1", {
    source: "/dispatcher",
    subject: `${leadId}/${step}`,
    tenant,
    data: {
      lead_id: leadId,
      step,
      delay_s: due.delay_s,
      due_at: due.due_at,
      idempotency_key: due.idempotency_key,
      channel: "hook",
      attempts: 8,
      reason: "exhausted",
      last_status_code: 503,
      last_error: "HTTP 503",
      due,
    },
  });
  await jetstream(nc).publish(subjects.followupDead(tenant, leadId, step), encodeEvent(event));
}
