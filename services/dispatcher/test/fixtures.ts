import { Writable } from "node:stream";
import {
  type FollowupDue,
  type FollowupPlan,
  type FollowupResult,
  idempotencyKey,
  leadKey,
  makeEvent,
  type StoredLead,
  subjects,
  type Topology,
  topology,
} from "@followup/contracts";
import {
  type ManagedProcess,
  metricValue,
  type NatsServer,
  spawnService,
  startNatsServer,
} from "@followup/nats-harness";
import { createLogger, provisionTopology } from "@followup/service-kit";
import { HOOK_KEY, HOOK_SECRET, putLead as putStoredLead, storedLead } from "@followup/system-tests/support";
import { type JetStreamClient, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { ChannelRegistry } from "../src/channels/channel.js";
import { HookChannel } from "../src/channels/hook.js";
import { type DispatcherHandle, startDispatcher } from "../src/dispatcher.js";
import { createDispatcherMetrics, type DispatcherMetrics } from "../src/metrics.js";

export const SECRET = HOOK_SECRET;
export const KEY = HOOK_KEY;

/** A lead as lead-intake stores it (only the fields the dispatcher reads matter). */
export async function putLead(
  kv: KV,
  tenant: string,
  leadId: string,
  extra: Partial<StoredLead> = {},
): Promise<void> {
  await putStoredLead(kv, storedLead(tenant, leadId, extra));
}

export interface DueSpec {
  tenant: string;
  leadId: string;
  step?: number;
  delayS?: number;
  dueAt?: Date;
  channel?: string;
  replays?: number;
}

export function dueEvent(spec: DueSpec): FollowupDue {
  const step = spec.step ?? 1;
  const dueAt = spec.dueAt ?? new Date();
  return makeEvent("followup.due.v1", {
    source: "/scheduler",
    subject: `${spec.leadId}/${step}`,
    tenant: spec.tenant,
    data: {
      lead_id: spec.leadId,
      step,
      delay_s: spec.delayS ?? 30,
      due_at: dueAt.toISOString(),
      idempotency_key: idempotencyKey({ tenant: spec.tenant, leadId: spec.leadId, step }),
      channel: spec.channel ?? "hook",
      lead_created_at: new Date(dueAt.getTime() - (spec.delayS ?? 30) * 1000).toISOString(),
      pred_prob: 0.9,
      fired_at: new Date().toISOString(),
      replays: spec.replays ?? 0,
    },
  });
}

/** Publishes a due follow-up the way the scheduler does; returns the event and its idempotency key. */
export async function publishDue(
  js: JetStreamClient,
  spec: DueSpec,
): Promise<{ event: FollowupDue; key: string }> {
  const event = dueEvent(spec);
  const step = event.data.step;
  await js.publish(subjects.followupDue(spec.tenant, spec.leadId, step), JSON.stringify(event), {
    msgID: `${spec.leadId}:${step}`,
  });
  return { event, key: event.data.idempotency_key };
}

export interface TimerSpec {
  tenant: string;
  leadId: string;
  /** Each step's due time; its timer gets the scheduler's TTL, max(1, floor(seconds left)). */
  steps: { dueAt: Date; delayS?: number; ttlS?: number }[];
  /** The plan as the scheduler stored it, changed (a cancelled plan, a cancelled step). */
  plan?: (plan: FollowupPlan) => FollowupPlan;
}

/**
 * What the scheduler leaves for a scored lead (its tests pin that): the lead's plan in
 * `followup_plans` and the timer of its first step on `followup.timer.<tenant>.<leadId>.1`,
 * whose expiry marker the dispatcher delivers (and then stores the next step's timer).
 */
export async function plantTimers(nc: NatsConnection, spec: TimerSpec): Promise<FollowupPlan> {
  const topo = topology();
  const firstDue = Math.min(...spec.steps.map((s) => s.dueAt.getTime()));
  const created: FollowupPlan = {
    lead_id: spec.leadId,
    tenant: spec.tenant,
    lead_created_at: new Date(firstDue - (spec.steps[0]?.delayS ?? 30) * 1000).toISOString(),
    pred_prob: 0.9,
    planned_at: new Date().toISOString(),
    steps: spec.steps.map((s, i) => ({
      step: i + 1,
      delay_s: s.delayS ?? 30 * (i + 1),
      due_at: s.dueAt.toISOString(),
      state: "pending" as const,
    })),
  };
  const plan = spec.plan ? spec.plan(created) : created;
  const plans = await new Kvm(nc).open(topo.buckets.plans.bucket);
  await plans.put(leadKey({ tenant: spec.tenant, leadId: spec.leadId }), JSON.stringify(plan));
  const js = jetstream(nc);
  for (const [i, step] of created.steps.slice(0, 1).entries()) {
    const ttl = spec.steps[i]?.ttlS ?? Math.max(1, Math.floor((Date.parse(step.due_at) - Date.now()) / 1000));
    await js.publish(subjects.followupTimer(spec.tenant, spec.leadId, step.step), "{}", {
      ttl: String(ttl),
      expect: { lastSubjectSequence: 0 },
    });
  }
  return plan;
}

/** Every message of a stream under a subject filter, decoded, oldest first. */
export async function readStream<T = Record<string, unknown>>(
  nc: NatsConnection,
  stream: string,
  filter: string,
): Promise<{ seq: number; subject: string; event: T }[]> {
  const jsm = await jetstreamManager(nc);
  const out: { seq: number; subject: string; event: T }[] = [];
  try {
    const batch = await jsm.direct.getBatch(stream, { seq: 1, next_by_subj: filter, batch: 1000 });
    for await (const m of batch) out.push({ seq: m.seq, subject: m.subject, event: m.json<T>() });
  } catch (err) {
    if (!/not found|no results/i.test((err as Error).message)) throw err;
  }
  return out;
}

/** The results of a lead's follow-ups on FOLLOWUP_RESULTS, oldest first. */
export async function resultsOf(
  nc: NatsConnection,
  tenant: string,
  leadId: string,
): Promise<FollowupResult["data"][]> {
  const stored = await readStream<FollowupResult>(
    nc,
    topology().streams.results.name,
    subjects.followupsOfLead("result", tenant, leadId),
  );
  return stored.map((s) => s.event.data);
}

/** A pino logger whose JSON lines the test can read. */
export function captureLogger(service = "dispatcher") {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  const logger = createLogger({ service, level: "debug", destination });
  return {
    logger,
    lines,
    entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

export interface InProcessOptions {
  nc: NatsConnection;
  topology: Topology;
  /** Extra hook channels by name (the URL and timeout each); "hook" is always the first. */
  hooks: Record<string, { url: string; timeoutMs?: number; concurrency?: number }>;
  maxAttempts?: number;
  baseMs?: number;
  maxMs?: number;
  concurrency?: number;
  graceMs?: number;
  resultBatchWindowMs?: number;
  markerConcurrency?: number;
}

export interface InProcessDispatcher {
  handle: DispatcherHandle;
  metrics: DispatcherMetrics;
  registry: Registry;
  channels: ChannelRegistry;
  logs: ReturnType<typeof captureLogger>;
  stop(): Promise<void>;
}

export async function startInProcess(options: InProcessOptions): Promise<InProcessDispatcher> {
  const registry = new Registry();
  const metrics = createDispatcherMetrics(registry);
  const logs = captureLogger();
  const channels = new ChannelRegistry();
  for (const [name, hook] of Object.entries(options.hooks)) {
    channels.register(
      new HookChannel({
        name,
        url: hook.url,
        secret: KEY,
        timeoutMs: hook.timeoutMs ?? 5_000,
        concurrency: hook.concurrency ?? 16,
      }),
    );
  }
  const handle = await startDispatcher({
    nc: options.nc,
    topology: options.topology,
    channels,
    metrics,
    logger: logs.logger,
    maxAttempts: options.maxAttempts ?? 3,
    backoff: { baseMs: options.baseMs ?? 200, maxMs: options.maxMs ?? 1_000 },
    concurrency: options.concurrency ?? 32,
    shutdownGraceMs: options.graceMs ?? 5_000,
    ...(options.resultBatchWindowMs !== undefined
      ? { resultBatchWindowMs: options.resultBatchWindowMs }
      : {}),
    ...(options.markerConcurrency !== undefined ? { markerConcurrency: options.markerConcurrency } : {}),
  });
  return {
    handle,
    metrics,
    registry,
    channels,
    logs,
    async stop() {
      await handle.stop();
      await channels.closeAll();
    },
  };
}

/** A dispatcher as its own process (`node --import tsx services/dispatcher/src/main.ts`). */
export function spawnDispatcher(name: string, env: Record<string, string>) {
  return spawnService({
    service: "dispatcher",
    name,
    env: {
      FOLLOWUP_HOOK_SECRET: SECRET,
      FOLLOWUP_RETRY_BASE_MS: "200",
      FOLLOWUP_RETRY_MAX_MS: "2000",
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      ...env,
    },
  });
}

export { metricValue };

/** A nats-server with the topology, a connection to it, and the dispatcher processes a test starts. */
export interface ProcessRig {
  server: NatsServer;
  nc: NatsConnection;
  /** A dispatcher process against this server (see {@link spawnDispatcher}), stopped by {@link ProcessRig.stop}. */
  spawn(name: string, env: Record<string, string>): ManagedProcess;
  /** Kills every process it started, closes `receiver` (if any), the connection and the server. */
  stop(receiver?: { close(): Promise<void> }): Promise<void>;
}

export async function startProcessRig(): Promise<ProcessRig> {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  await provisionTopology(nc, topology());
  const processes: ManagedProcess[] = [];
  return {
    server,
    nc,
    spawn(name, env) {
      const p = spawnDispatcher(name, { NATS_URL: server.url, ...env });
      processes.push(p);
      return p;
    },
    async stop(receiver) {
      await Promise.all(processes.splice(0).map((p) => p.cleanup()));
      await receiver?.close();
      await nc.close();
      await server.cleanup();
    },
  };
}
