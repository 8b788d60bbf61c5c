import {
  decodeEvent,
  type EventOf,
  type EventType,
  FollowupPlan,
  HookReceipt,
  type LeadRef,
  leadKey,
  MARKER_REASON_HEADER,
  parseFollowupSubject,
  type StoredLead,
  type SuppressionChannel,
  subjects,
  suppressionKey,
} from "@followup/contracts";
import type { StoredMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { type BrokerHandles, readSubject } from "../broker.js";
import type { LeadSources } from "./view.js";

/**
 * Reads what GET /v1/lead/:id shows besides the lead, straight from JetStream: its plan (a KV get)
 * and the lead's messages on LEADS, FOLLOWUP_TIMERS (its markers), FOLLOWUP_RESULTS, FOLLOWUP_DLQ
 * and the hook_receipts bucket, each with one batched direct get filtered by the lead's subjects (no consumer is
 * created; the server finds the subjects through its subject index). Each source is bounded.
 */

/** The part of a logger the reads use (pino's or a fastify request's). */
export type ViewLog = {
  warn(context: object, message: string): void;
  error(context: object, message: string): void;
};

/** At most this many messages per source: a lead has a handful of events, so this is a fence. */
export const LEAD_VIEW_SOURCE_LIMIT = 500;

/** Decodes the messages as `type`, skipping (and logging) any that break the contract. */
function decodeAll<T extends EventType>(
  type: T | ((subject: string) => T | undefined),
  messages: StoredMsg[],
  log: ViewLog,
): EventOf<T>[] {
  const events: EventOf<T>[] = [];
  for (const message of messages) {
    const wanted = typeof type === "function" ? type(message.subject) : type;
    if (wanted === undefined) continue;
    try {
      events.push(decodeEvent(wanted, message.data));
    } catch (err) {
      // A foreign or broken message must not hide the rest of the lead's history.
      log.warn(
        { subject: message.subject, seq: message.seq, err: (err as Error).message },
        "lead_view_event_skipped",
      );
    }
  }
  return events;
}

function leadEventType(subject: string): "lead.scored.v1" | "lead.outcome.v1" | undefined {
  if (subject.startsWith("lead.scored.")) return "lead.scored.v1";
  if (subject.startsWith("lead.outcome.")) return "lead.outcome.v1";
  return undefined;
}

/** A lead's plan, or null when there is none or it breaks its contract (logged). */
export async function readPlan(plans: KV, ref: LeadRef, log: ViewLog): Promise<FollowupPlan | null> {
  const entry = await plans.get(leadKey(ref));
  if (entry === null || entry.operation !== "PUT") return null;
  const parsed = FollowupPlan.safeParse(entry.json());
  if (!parsed.success) {
    log.error({ key: leadKey(ref) }, "followup_plan_breaks_contract");
    return null;
  }
  return parsed.data;
}

function receiptsOf(messages: StoredMsg[], log: ViewLog): HookReceipt[] {
  const receipts: HookReceipt[] = [];
  for (const message of messages) {
    const operation = message.header.get("KV-Operation");
    if (operation === "DEL" || operation === "PURGE") continue;
    try {
      const parsed = HookReceipt.safeParse(message.json());
      if (parsed.success) receipts.push(parsed.data);
      else log.warn({ subject: message.subject }, "hook_receipt_breaks_contract");
    } catch {
      log.warn({ subject: message.subject }, "hook_receipt_not_json");
    }
  }
  return receipts;
}

/** The expiry markers among a lead's timer messages (one message per step's subject). */
function markersOf(messages: StoredMsg[]): LeadSources["markers"] {
  return messages
    .filter((m) => m.header?.get(MARKER_REASON_HEADER) === "MaxAge")
    .map((m) => ({ step: parseFollowupSubject(m.subject, "timer").step, at: m.time.toISOString() }));
}

/**
 * Everything the lead view is built from, around the stored lead (the leads room reads it: a
 * tenant without such a lead has no view).
 */
export async function readLeadSources(
  handles: BrokerHandles,
  lead: StoredLead,
  log: ViewLog,
): Promise<LeadSources> {
  const { streams } = handles.topology;
  const ref: LeadRef = { tenant: lead.tenant, leadId: lead.lead_id };
  const { tenant, leadId } = ref;
  const receiptsBucket = handles.topology.buckets.receipts.bucket;
  const read = (stream: string, subject: string) =>
    readSubject(handles.jsm, stream, subject, LEAD_VIEW_SOURCE_LIMIT);
  const [
    plan,
    leadMessages,
    resultMessages,
    deadMessages,
    replayMessages,
    receiptMessages,
    timerMessages,
    suppressedChannels,
  ] = await Promise.all([
    readPlan(handles.plans, ref, log),
    read(streams.leads.name, subjects.leadEvents(tenant, leadId)),
    read(streams.results.name, subjects.followupsOfLead("result", tenant, leadId)),
    read(streams.dead.name, subjects.followupsOfLead("dead", tenant, leadId)),
    read(streams.results.name, subjects.followupsOfLead("replayed", tenant, leadId)),
    read(`KV_${receiptsBucket}`, `$KV.${receiptsBucket}.${leadKey(ref)}.*`),
    read(streams.timers.name, subjects.followupsOfLead("timer", tenant, leadId)),
    suppressedChannelsOf(handles.suppressions, lead),
  ]);
  return {
    lead,
    plan,
    leadEvents: decodeAll(leadEventType, leadMessages, log),
    results: decodeAll("followup.result.v1", resultMessages, log),
    deadLetters: decodeAll("followup.dead.v1", deadMessages, log),
    replays: decodeAll("followup.replayed.v1", replayMessages, log),
    receipts: receiptsOf(receiptMessages, log),
    markers: markersOf(timerMessages),
    suppressedChannels,
  };
}

/**
 * Which of the lead's addresses the tenant suppressed: two direct gets. An address suppressions
 * cannot key (a phone number not written in E.164) is left to the dispatcher, which decides with
 * the tenant's region at delivery.
 */
async function suppressedChannelsOf(suppressions: KV, lead: StoredLead): Promise<Set<string>> {
  const addresses: [SuppressionChannel, string | undefined][] = [
    ["sms", lead.phone],
    ["email", lead.email],
  ];
  const found = new Set<string>();
  await Promise.all(
    addresses.map(async ([channel, address]) => {
      if (!address) return;
      let key: string;
      try {
        key = suppressionKey(lead.tenant, channel, address);
      } catch {
        return;
      }
      const entry = await suppressions.get(key).catch(() => null);
      if (entry?.operation === "PUT") found.add(channel);
    }),
  );
  return found;
}
