import { Writable } from "node:stream";
import { type Topology, topology } from "@followup/contracts";
import { type NatsServer, startNatsServer } from "@followup/nats-harness";
import {
  createLogger,
  createMetricsRegistry,
  type Env,
  provisionTopology,
  Readiness,
} from "@followup/service-kit";
import { HOOK_KEY, HOOK_SECRET } from "@followup/system-tests/support";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { expect } from "vitest";
import { buildApp } from "../src/app.js";
import { ApiKeys } from "../src/auth.js";
import { Broker } from "../src/broker.js";
import { channelSecretsOf, loadLeadIntakeConfig } from "../src/config.js";
import type { EventPublisher } from "../src/deps.js";
import { JetStreamPublisher } from "../src/leads/publisher.js";
import { createLeadIntakeMetrics, type LeadIntakeMetrics } from "../src/metrics.js";
import { LeadOutbox } from "../src/outbox/outbox.js";
import { OutboxPublisher } from "../src/outbox/publisher.js";
import { loadDefaultConversionModel } from "../src/scoring/scoring.js";

export const SECRET = HOOK_SECRET;
export const KEY = HOOK_KEY;
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

/** A nats-server and a lead-intake in this process attached to it: what most files run against. */
export async function startIntakeWithServer(
  options: Omit<IntakeOptions, "server"> = {},
): Promise<{ server: NatsServer; intake: Intake }> {
  const server = await startNatsServer();
  try {
    return { server, intake: await startIntake({ ...options, server }) };
  } catch (err) {
    await server.cleanup();
    throw err;
  }
}

/** Closes what {@link startIntakeWithServer} started (either is unset when its start failed). */
export async function stopIntakeWithServer(intake: Intake | undefined, server: NatsServer | undefined) {
  await intake?.close();
  await server?.cleanup();
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
  const wiring = { config, logger, registry, metrics, readiness, broker };
  const publishing = outbox ? { publisher: outbox, outbox } : { publisher: direct };
  const app = await buildApp({
    ...wiring,
    ...publishing,
    scorer: loadDefaultConversionModel(logger),
    apiKeys: new ApiKeys(config.API_KEYS),
    hookKey: config.FOLLOWUP_HOOK_SECRET,
    channelSecrets: channelSecretsOf(config),
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

/** Templates of the names and channels SEQUENCE_EXAMPLE's steps name, so that it can be stored. */
export const EXAMPLE_TEMPLATES = {
  "first-touch": { channel: "sms", body: 'Hi {{ lead.first_name | default: "there" }}, still interested?' },
  recap: { channel: "email", subject: "Your enquiry", body: "Hi {{ lead.name }}, here is a recap." },
} as const;

/** Stores EXAMPLE_TEMPLATES for the key's tenant (a sequence naming them can then be stored). */
export async function putExampleTemplates(app: FastifyInstance, key = ACME_KEY): Promise<void> {
  for (const [name, template] of Object.entries(EXAMPLE_TEMPLATES)) {
    const res = await app.inject({
      method: "PUT",
      url: `/v1/templates/${name}`,
      headers: jsonHeaders(key),
      payload: JSON.stringify(template),
    });
    if (res.statusCode >= 300) throw new Error(`PUT /v1/templates/${name}: ${res.statusCode} ${res.body}`);
  }
}

/** A field a failure names, and the rule it broke. */
export interface Detail {
  path: string;
  message: string;
}

/** What one JSON call answered: its status, its ETag and its body. */
export interface ApiCall {
  status: number;
  etag: string | undefined;
  body: { ok: boolean; data?: unknown; error?: { code: string; message: string; details?: Detail[] } };
}

/** The fields a failure names (none for a success). */
export function detailsOf(call: ApiCall): Detail[] {
  return call.body.error?.details ?? [];
}

/**
 * The answer is a 400 validation_error that names `path` and no other field, with the rule
 * (`message`: contained, or matched) in the detail and the path in the message.
 */
export function expectFieldRefused(res: ApiCall, path: string, message: string | RegExp): void {
  expect(res.status).toBe(400);
  expect(res.body.error?.code).toBe("validation_error");
  const details = detailsOf(res);
  expect(details.map((d) => d.path)).toEqual([path]);
  if (typeof message === "string") expect(details[0]!.message).toContain(message);
  else expect(details[0]!.message).toMatch(message);
  expect(res.body.error?.message).toContain(path);
}

let names = 0;
/** A name no other test uses, so no test reads another's leftovers. */
export function freshName(label: string): string {
  names += 1;
  return `${label}-${names}`;
}

/**
 * One JSON call to the app: the body as JSON, under the key (ACME_KEY by default; null: none),
 * with an If-Match when given.
 */
export async function apiCall(
  app: FastifyInstance,
  method: "GET" | "PUT" | "POST" | "DELETE",
  url: string,
  options: { body?: unknown; key?: string | null; ifMatch?: string } = {},
): Promise<ApiCall> {
  const headers: Record<string, string> =
    options.key === null ? { "content-type": "application/json" } : jsonHeaders(options.key ?? ACME_KEY);
  if (options.ifMatch !== undefined) headers["if-match"] = options.ifMatch;
  if (options.body === undefined) delete headers["content-type"];
  const res = await app.inject({
    method,
    url,
    headers,
    ...(options.body !== undefined ? { payload: JSON.stringify(options.body) } : {}),
  });
  const etag = res.headers.etag;
  return { status: res.statusCode, etag: typeof etag === "string" ? etag : undefined, body: res.json() };
}

/** Headers of an authenticated JSON call. */
export function jsonHeaders(key = ACME_KEY): Record<string, string> {
  return { "content-type": "application/json", "x-api-key": key };
}

/** Messages stored in a stream. */
export async function streamMessages(jsm: JetStreamManager, stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}
