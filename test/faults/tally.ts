import { appendFileSync } from "node:fs";
import type { LeadAccepted } from "@followup/contracts";
import { TEST_ADMIN, waitFor } from "@followup/nats-harness";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { expect } from "vitest";
import { type ApiClient, type HookRecorder, REFERENCE_LEADS } from "../support/index.js";

/**
 * What every fault scenario counts and asserts: leads accepted, follow-ups expected, delivered,
 * lost, duplicated, and the work in flight at the moment of the fault (which bounds the
 * duplicates: at least once means a crash between a successful call and its ack repeats that
 * call, and nothing else). Counts are small in CI; FAULTS_SCALE=large runs them bigger.
 */

export const LARGE = process.env.FAULTS_SCALE === "large";

/** `ci` normally, `large` with FAULTS_SCALE=large. */
export function scaled(ci: number, large: number): number {
  return LARGE ? large : ci;
}

/** A test's time budget: the CI one, or a multiple of it for the larger run. */
export function budget(ciMs: number): number {
  return LARGE ? ciMs * 4 : ciMs;
}

export const THRESHOLD = 0.7;

export interface Posted {
  accepted: LeadAccepted[];
  /** Leads answered 202: queued in lead-intake's local outbox. */
  queuedLocally: number;
  /** Answers other than 200/202 (none are expected: intake fails open). */
  refused: { status: number; body: unknown }[];
}

/**
 * Posts `count` qualifying leads (the reference lead scored above 0.70), `concurrency` at a
 * time, spread over `spreadMs` when given. `onAccepted` runs after each acceptance (a test
 * triggers its fault there, mid-burst), awaited before that worker posts its next lead.
 */
export async function postLeads(
  api: ApiClient,
  count: number,
  options: { concurrency?: number; spreadMs?: number; onAccepted?: (n: number) => Promise<void> | void } = {},
): Promise<Posted> {
  const { concurrency = 16, spreadMs = 0 } = options;
  const posted: Posted = { accepted: [], queuedLocally: 0, refused: [] };
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const index = next++;
        const wait = started + (spreadMs * index) / count - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        const res = await api.request<{ data: LeadAccepted }>("POST", "/v1/lead", {
          body: REFERENCE_LEADS.high,
        });
        if (res.status === 200 || res.status === 202) {
          posted.accepted.push(res.body.data);
          if (res.status === 202) posted.queuedLocally++;
          await options.onAccepted?.(posted.accepted.length);
        } else {
          posted.refused.push({ status: res.status, body: res.body });
        }
      }
    }),
  );
  return posted;
}

/** The webhook-ids (`acme:<leadId>:<step>`) of the follow-ups the accepted leads must get. */
export function expectedFollowups(accepted: LeadAccepted[], steps: number): Set<string> {
  const ids = new Set<string>();
  for (const lead of accepted) {
    if (lead.pred_prob < THRESHOLD) continue;
    for (let step = 1; step <= steps; step++) ids.add(`acme:${lead.lead_id}:${step}`);
  }
  return ids;
}

/** Unacknowledged deliveries of the given consumers: the work in flight, from the server's view. */
export async function ackPending(
  natsUrl: string,
  consumers: [stream: string, durable: string][],
): Promise<number> {
  const nc = await connect({
    servers: natsUrl.split(","),
    name: "fault-probe",
    reconnect: false,
    ...TEST_ADMIN,
  });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    let pending = 0;
    for (const [stream, durable] of consumers) {
      pending += (await jsm.consumers.info(stream, durable)).num_ack_pending;
    }
    return pending;
  } finally {
    await nc.close();
  }
}

/**
 * Waits until the consumers have nothing pending or unacknowledged: every redelivery of the work
 * that was in flight at the fault has happened, so the duplicates counted after it are final.
 */
export async function waitForQuiet(natsUrl: string, timeoutMs: number): Promise<void> {
  const nc = await connect({ servers: natsUrl.split(","), name: "fault-probe", ...TEST_ADMIN });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    await waitFor(
      async () => {
        for (const [stream, durable] of ALL_CONSUMERS) {
          const info = await jsm.consumers.info(stream, durable);
          if (info.num_pending > 0 || info.num_ack_pending > 0) return false;
        }
        return true;
      },
      { description: "every consumer to have nothing pending or unacknowledged", timeoutMs, intervalMs: 250 },
    );
  } finally {
    await nc.close();
  }
}

/** For a failed scenario: the timer subjects of some lost follow-ups and the markers consumer's state. */
async function whereAre(natsUrl: string, webhookIds: string[]): Promise<string> {
  const nc = await connect({ servers: natsUrl.split(","), name: "fault-probe", ...TEST_ADMIN });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    const facts: unknown[] = [];
    for (const id of webhookIds) {
      const [tenant, leadId, step] = id.split(":");
      const subject = `followup.timer.${tenant}.${leadId}.${step}`;
      const msg = await jsm.streams
        .getMessage("FOLLOWUP_TIMERS", { last_by_subj: subject })
        .catch((err: Error) => err.message);
      facts.push({
        subject,
        timer:
          typeof msg === "string" || msg === null ? msg : { seq: msg.seq, headers: msg.header?.toString() },
      });
    }
    const info = await jsm.consumers.info("FOLLOWUP_TIMERS", "dispatcher-markers");
    const { delivered, ack_floor, num_ack_pending, num_pending, num_redelivered } = info;
    facts.push({ markers: { delivered, ack_floor, num_ack_pending, num_pending, num_redelivered } });
    return JSON.stringify(facts);
  } catch (err) {
    return (err as Error).message;
  } finally {
    await nc.close();
  }
}

export const SCHEDULER_CONSUMERS: [string, string][] = [["LEADS", "scheduler-scored"]];
/** The dispatcher consumes the timers' markers itself (the firing path) and the work queue (replays). */
export const DISPATCHER_CONSUMERS: [string, string][] = [
  ["FOLLOWUP_TIMERS", "dispatcher-markers"],
  ["FOLLOWUPS", "dispatcher"],
];
const ALL_CONSUMERS: [string, string][] = [
  ...SCHEDULER_CONSUMERS,
  ["LEADS", "scheduler-outcomes"],
  ...DISPATCHER_CONSUMERS,
];

export interface FaultRow {
  scenario: string;
  accepted: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  inFlightAtFault: number;
  /** From the start of the scenario until every expected follow-up was delivered. */
  durationMs: number;
  /** Until every consumer was quiet too (the redeliveries of the work in flight had happened). */
  quietMs: number;
  /** Anything else the scenario measured (dead letters, leads queued locally, ...). */
  notes?: Record<string, number | string>;
}

/** Waits until every expected follow-up reached the hook (or the deadline passes: then some are lost). */
async function waitForDeliveries(hook: HookRecorder, expected: Set<string>, timeoutMs: number) {
  await waitFor(() => [...expected].every((id) => hook.delivered.has(id)), {
    description: `${expected.size} follow-ups at the hook (have ${[...expected].filter((id) => hook.delivered.has(id)).length})`,
    timeoutMs,
    intervalMs: 200,
  }).catch(() => undefined);
}

/**
 * Waits for every expected follow-up and for the consumers to fall quiet (so every redelivery has
 * happened), then counts what the hook saw against what was expected, prints the row (and
 * appends it as JSON to FAULTS_REPORT when set), and asserts the promise of every scenario:
 * nothing lost, nothing delivered that was not expected, never early, and duplicates within the
 * work in flight at the fault.
 */
export async function settle(
  scenario: string,
  facts: {
    posted: Posted;
    expected: Set<string>;
    hook: HookRecorder;
    natsUrl: string;
    inFlightAtFault: number;
    startedAt: number;
    timeoutMs: number;
  },
  notes?: Record<string, number | string>,
): Promise<FaultRow> {
  const { posted, expected, hook, inFlightAtFault, startedAt } = facts;
  const deadline = Date.now() + facts.timeoutMs;
  await waitForDeliveries(hook, expected, facts.timeoutMs);
  const durationMs = Date.now() - startedAt;
  await waitForQuiet(facts.natsUrl, Math.max(5_000, deadline - Date.now()));
  const delivered = [...expected].filter((id) => hook.delivered.has(id)).length;
  const duplicated = hook.calls.filter((call) => call.duplicate && expected.has(call.webhookId)).length;
  const unexpected = [...hook.delivered.keys()].filter((id) => !expected.has(id));
  const early = [...hook.delivered.values()].filter(
    (call) => call.body?.due_at !== undefined && call.receivedAt < Date.parse(call.body.due_at),
  );
  const row: FaultRow = {
    scenario,
    accepted: posted.accepted.length,
    expected: expected.size,
    delivered,
    lost: expected.size - delivered,
    duplicated,
    inFlightAtFault,
    durationMs,
    quietMs: Date.now() - startedAt,
    ...(notes ? { notes } : {}),
  };
  console.info(`[fault] ${JSON.stringify(row)}`);
  if (row.lost > 0) {
    const missing = [...expected].filter((id) => !hook.delivered.has(id));
    console.info(
      `[fault] ${scenario}: not delivered (first 20 of ${missing.length}): ${missing.slice(0, 20).join(" ")}`,
    );
    console.info(
      `[fault] ${scenario}: where they are: ${await whereAre(facts.natsUrl, missing.slice(0, 5))}`,
    );
  }
  if (process.env.FAULTS_REPORT) appendFileSync(process.env.FAULTS_REPORT, `${JSON.stringify(row)}\n`);

  expect(posted.refused, "leads refused (intake fails open)").toEqual([]);
  expect(row.lost, `${scenario}: follow-ups lost`).toBe(0);
  expect(unexpected, `${scenario}: follow-ups delivered that were not expected`).toEqual([]);
  expect(
    early.map((call) => call.webhookId),
    `${scenario}: delivered before due_at`,
  ).toEqual([]);
  expect(
    row.duplicated,
    `${scenario}: duplicates beyond the work in flight at the fault`,
  ).toBeLessThanOrEqual(inFlightAtFault);
  expect(hook.unverified, "hook calls with a bad signature").toBe(0);
  return row;
}
