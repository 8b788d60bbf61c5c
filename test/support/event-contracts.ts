import {
  type AttemptResult,
  ContractError,
  decodeEvent,
  type EventType,
  FollowupPlan,
  HookReceipt,
  isProviderReport,
  type ParsedSubject,
  parseSubject,
  SequenceRecord,
  StoredLead,
  TemplateRecord,
  type Topology,
  topology,
} from "@followup/contracts";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { headerOf, type RecordedMessage } from "./event-recorder.js";

/**
 * What each kind of subject may carry, and who may publish it: the contracts of
 * packages/contracts applied to what was really seen on the wire. `followup.fired.*` is not an
 * event (nats-server RePublishes the timer stream headers-only), so its headers are checked.
 */
export const SUBJECT_CONTRACTS: Record<string, { type: EventType; sources: string[] }> = {
  "lead.scored": { type: "lead.scored.v1", sources: ["/lead-intake"] },
  "lead.outcome": { type: "lead.outcome.v1", sources: ["/lead-intake"] },
  // The scheduler writes a lead's first timer, the dispatcher the next when a step fires.
  "followup.timer": { type: "followup.timer.v1", sources: ["/scheduler", "/dispatcher"] },
  // A replay from the dead letters (lead-intake's /ops/dead-letters/replay) publishes the due
  // follow-up again and records the replay.
  "followup.due": { type: "followup.due.v1", sources: ["/scheduler", "/dead-letter-replay"] },
  // Twilio's status callbacks (lead-intake's /hooks/twilio/status) record a provider's report.
  "followup.result": { type: "followup.result.v1", sources: ["/dispatcher", "/twilio-status"] },
  "followup.dead": { type: "followup.dead.v1", sources: ["/dispatcher"] },
  "followup.replayed": { type: "followup.replayed.v1", sources: ["/dead-letter-replay"] },
};

/** A message that broke its contract, and every way it did. */
export interface ContractViolation {
  index: number;
  subject: string;
  problems: string[];
}

type Checked = Pick<RecordedMessage, "subject" | "headers" | "data">;

/** Every way one message breaks its contract; empty when it keeps it. */
export function contractProblems(message: Checked, topo: Topology = topology()): string[] {
  let parsed: ParsedSubject;
  try {
    parsed = parseSubject(message.subject);
  } catch (err) {
    return [`subject: ${(err as Error).message}`];
  }
  const kind = `${parsed.family}.${parsed.kind}`;
  if (kind === "followup.fired") return firedProblems(message, parsed, topo);
  const contract = SUBJECT_CONTRACTS[kind];
  if (!contract) return [`subject: no contract for ${kind}`];

  let event: { type: string; source: string; subject: string; tenant: string; data: Record<string, unknown> };
  try {
    event = decodeEvent(contract.type, message.data) as typeof event;
  } catch (err) {
    if (err instanceof ContractError)
      return err.issues.map((i) => `${contract.type} ${i.path}: ${i.message}`);
    throw err;
  }
  const problems: string[] = [];
  if (!contract.sources.includes(event.source)) {
    problems.push(
      `source: ${event.source} may not publish ${kind} (allowed: ${contract.sources.join(", ")})`,
    );
  }
  if (
    kind === "followup.result" &&
    event.source === "/twilio-status" &&
    !isProviderReport(event.data.result as AttemptResult)
  )
    problems.push(
      `data.result: /twilio-status publishes provider reports only, not ${String(event.data.result)}`,
    );
  if (event.tenant !== parsed.tenant)
    problems.push(`tenant: ${event.tenant} is not the subject's ${parsed.tenant}`);
  if (event.data.lead_id !== parsed.leadId) {
    problems.push(`data.lead_id: ${String(event.data.lead_id)} is not the subject's ${parsed.leadId}`);
  }
  const expectedSubject = parsed.family === "followup" ? `${parsed.leadId}/${parsed.step}` : parsed.leadId;
  if (event.subject !== expectedSubject)
    problems.push(`subject attribute: ${event.subject}, expected ${expectedSubject}`);
  if (parsed.family === "followup") {
    if (event.data.step !== parsed.step)
      problems.push(`data.step: ${String(event.data.step)} is not the subject's ${parsed.step}`);
    if ("idempotency_key" in event.data) {
      const key = `${parsed.tenant}:${parsed.leadId}:${parsed.step}`;
      if (event.data.idempotency_key !== key) problems.push(`data.idempotency_key: expected ${key}`);
    }
  }
  if (kind === "followup.timer") {
    const ttl = headerOf(message as RecordedMessage, "Nats-TTL");
    if (ttl !== String(event.data.ttl_s))
      problems.push(`Nats-TTL header ${ttl} is not data.ttl_s ${String(event.data.ttl_s)}`);
  }
  if (kind === "followup.timer" || (kind === "followup.due" && event.source === "/scheduler")) {
    const msgId = headerOf(message as RecordedMessage, "Nats-Msg-Id");
    if (parsed.family === "followup" && msgId !== `${parsed.leadId}:${parsed.step}`) {
      problems.push(`Nats-Msg-Id header ${msgId}, expected ${parsed.leadId}:${parsed.step}`);
    }
  }
  return problems;
}

/** `followup.fired.*`: a headers-only copy of the timer stream (the timer when stored, its marker on expiry). */
function firedProblems(message: Checked, parsed: ParsedSubject, topo: Topology): string[] {
  const problems: string[] = [];
  const header = (name: string) => headerOf(message as RecordedMessage, name);
  if (message.data.length !== 0)
    problems.push(`body: ${message.data.length} bytes; RePublish is headers-only`);
  if (header("Nats-Stream") !== topo.streams.timers.name) {
    problems.push(`Nats-Stream: ${header("Nats-Stream")}, expected ${topo.streams.timers.name}`);
  }
  const step = parsed.family === "followup" ? parsed.step : 0;
  const source = `followup.timer.${parsed.tenant}.${parsed.leadId}.${step}`;
  if (header("Nats-Subject") !== source)
    problems.push(`Nats-Subject: ${header("Nats-Subject")}, expected ${source}`);
  if (!/^[1-9][0-9]*$/.test(header("Nats-Sequence") ?? "")) {
    problems.push(`Nats-Sequence: ${header("Nats-Sequence")} is not a stream sequence`);
  }
  if (Number.isNaN(Date.parse(header("Nats-Time-Stamp") ?? ""))) {
    problems.push(`Nats-Time-Stamp: ${header("Nats-Time-Stamp")} is not a time`);
  }
  const reason = header("Nats-Marker-Reason");
  if (reason !== undefined && reason !== "MaxAge")
    problems.push(`Nats-Marker-Reason: ${reason}, expected MaxAge`);
  if (reason === undefined && !/^[1-9][0-9]*$/.test(header("Nats-TTL") ?? "")) {
    problems.push(`Nats-TTL: a timer's copy needs whole seconds, got ${header("Nats-TTL")}`);
  }
  return problems;
}

/** Every recorded message that breaks its contract. */
export function contractViolations(messages: readonly RecordedMessage[]): ContractViolation[] {
  const topo = topology();
  return messages
    .map((m) => ({ index: m.index, subject: m.subject, problems: contractProblems(m, topo) }))
    .filter((v) => v.problems.length > 0);
}

/** How many recorded messages there were of each kind (`lead.scored`, `followup.fired`, ...). */
export function countByKind(messages: readonly RecordedMessage[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of messages) {
    const kind = m.subject.split(".").slice(0, 2).join(".");
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

/** What a record schema gives: the record, or the issues that break it. */
interface RecordSchema<T> {
  safeParse(
    value: unknown,
  ):
    | { success: true; data: T }
    | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] } };
}

/** Parses a record; gives its issues, or the `<tenant>.<id>` its fields say its key begins with. */
function recordCheck<T>(schema: RecordSchema<T>, keyOf: (record: T) => string) {
  return (json: unknown): { issues: string[] } | { key: string } => {
    const result = schema.safeParse(json);
    if (result.success) return { key: keyOf(result.data) };
    return {
      issues: result.error.issues.map((issue) => `${issue.path.map(String).join(".")}: ${issue.message}`),
    };
  };
}

/**
 * Every record in the KV buckets (`leads`, `followup_plans`, `hook_receipts`, `sequences`,
 * `templates`) checked against StoredLead, FollowupPlan, HookReceipt, SequenceRecord and
 * TemplateRecord, and against its key (tenant and
 * lead id, or tenant and name); returns `<bucket>/<key>: problem` lines and how many records were read.
 */
export async function storedRecordProblems(
  nc: NatsConnection,
  topo: Topology = topology(),
): Promise<{ checked: number; problems: string[] }> {
  const byLead = (r: { tenant: string; lead_id: string }) => `${r.tenant}.${r.lead_id}`;
  const byName = (r: { tenant: string; name: string }) => `${r.tenant}.${r.name}`;
  const checks = [
    [topo.buckets.leads.bucket, recordCheck(StoredLead, byLead)],
    [topo.buckets.plans.bucket, recordCheck(FollowupPlan, byLead)],
    [topo.buckets.receipts.bucket, recordCheck(HookReceipt, byLead)],
    [topo.buckets.sequences.bucket, recordCheck(SequenceRecord, byName)],
    [topo.buckets.templates.bucket, recordCheck(TemplateRecord, byName)],
  ] as const;
  const problems: string[] = [];
  let checked = 0;
  const kvm = new Kvm(nc);
  for (const [bucket, check] of checks) {
    const kv = await kvm.open(bucket);
    for await (const key of await kv.keys()) {
      const entry = await kv.get(key);
      if (entry === null || entry.operation !== "PUT") continue;
      checked++;
      let json: unknown;
      try {
        json = entry.json();
      } catch {
        problems.push(`${bucket}/${key}: not JSON`);
        continue;
      }
      const outcome = check(json);
      if ("issues" in outcome) {
        for (const issue of outcome.issues) problems.push(`${bucket}/${key}: ${issue}`);
      } else if (outcome.key !== key.split(".").slice(0, 2).join(".")) {
        problems.push(`${bucket}/${key}: the record names ${outcome.key}, which does not match the key`);
      }
    }
  }
  return { checked, problems };
}
