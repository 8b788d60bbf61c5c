import {
  decodeEvent,
  type EventOf,
  type EventType,
  FollowupPlan,
  HookReceipt,
  type LeadRef,
  leadKey,
  subjects,
} from "@followup/contracts";
import { isNoMessages } from "@followup/service-kit";
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { BrokerHandles } from "./broker.js";
import type { LeadSources } from "./lead-view.js";
import { getLead } from "./leads-store.js";

/**
 * Reads what GET /v1/lead/:id shows, straight from JetStream: the lead and its plan (KV gets),
 * and the lead's messages on LEADS, FOLLOWUP_RESULTS, FOLLOWUP_DLQ and the hook_receipts
 * bucket, each with one batched direct get filtered by the lead's subjects (no consumer is
 * created; the server finds the subjects through its subject index). Each source is bounded.
 */

/** The part of a logger the reads use (pino's or a fastify request's). */
export type ViewLog = {
  warn(context: object, message: string): void;
  error(context: object, message: string): void;
};

/** At most this many messages per source: a lead has a handful of events, so this is a fence. */
export const LEAD_VIEW_SOURCE_LIMIT = 500;

/** The messages of `stream` on `subject` (wildcards allowed), oldest first, at most `limit`. */
export async function readSubject(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  limit = LEAD_VIEW_SOURCE_LIMIT,
): Promise<StoredMsg[]> {
  const messages: StoredMsg[] = [];
  try {
    const batch = await jsm.direct.getBatch(stream, { seq: 1, next_by_subj: subject, batch: limit });
    for await (const message of batch) {
      messages.push(message);
      if (messages.length >= limit) break;
    }
  } catch (err) {
    // The server answers "no results" when nothing matches: an empty list, not a failure.
    if (!isNoMessages(err)) throw err;
  }
  return messages;
}

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

async function readPlan(plans: KV, ref: LeadRef, log: ViewLog): Promise<FollowupPlan | null> {
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

/** Everything the lead view is built from, or null when the tenant has no such lead. */
export async function readLeadSources(
  handles: BrokerHandles,
  ref: LeadRef,
  log: ViewLog,
): Promise<LeadSources | null> {
  const found = await getLead(handles.leads, ref);
  if (found === null) return null;
  const { streams } = handles.topology;
  const { tenant, leadId } = ref;
  const receiptsBucket = handles.topology.buckets.receipts.bucket;
  const [plan, leadMessages, resultMessages, deadMessages, receiptMessages] = await Promise.all([
    readPlan(handles.plans, ref, log),
    readSubject(handles.jsm, streams.leads.name, subjects.leadEvents(tenant, leadId)),
    readSubject(handles.jsm, streams.results.name, subjects.followupsOfLead("result", tenant, leadId)),
    readSubject(handles.jsm, streams.dead.name, subjects.followupsOfLead("dead", tenant, leadId)),
    readSubject(handles.jsm, `KV_${receiptsBucket}`, `$KV.${receiptsBucket}.${leadKey(ref)}.*`),
  ]);
  return {
    lead: found.lead,
    plan,
    leadEvents: decodeAll(leadEventType, leadMessages, log),
    results: decodeAll("followup.result.v1", resultMessages, log),
    deadLetters: decodeAll("followup.dead.v1", deadMessages, log),
    receipts: receiptsOf(receiptMessages, log),
  };
}
