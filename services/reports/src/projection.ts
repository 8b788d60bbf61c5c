import { BUILT_IN_SEQUENCE, type FollowupPlan } from "@followup/contracts";

/**
 * The conversion projection, pure. Each lead has one record, folded from its events by
 * applyEvent; each record contributes counters (contribution) to the documents of its
 * sequence's day and its steps' day. The store writes a record and the difference of its
 * contribution in one atomic batch, so however often an event is redelivered and in whatever
 * order the three streams deliver, a lead is counted once: applyEvent only ever sets a field, takes
 * a minimum or a maximum, so applying an event twice changes nothing the second time.
 */

export interface StepRecord {
  channel?: string;
  variant?: string;
  /** The first successful delivery. */
  delivered_at?: string;
  failed?: boolean;
  suppressed?: boolean;
}

export interface LeadRecord {
  tenant: string;
  lead_id: string;
  created_at?: string;
  model_version?: string;
  /** From the plan: the sequence enrolled in (the built-in `default` for plans before sequences). */
  sequence?: string;
  enrolled?: boolean;
  holdout?: boolean;
  steps: Record<string, StepRecord>;
  /** The first booked outcome. */
  booked_at?: string;
  /** The last outcome recorded. */
  last_outcome?: { kind: string; at: string };
}

/** An event as the projection reads it: only the fields it needs, from any of its three sources. */
export type ProjectionEvent =
  | { kind: "scored"; tenant: string; lead_id: string; created_at: string; model_version: string }
  | { kind: "plan"; tenant: string; lead_id: string; plan: FollowupPlan }
  | {
      kind: "result";
      tenant: string;
      lead_id: string;
      step: number;
      channel: string;
      result: string;
      at: string;
    }
  | { kind: "outcome"; tenant: string; lead_id: string; outcome: string; at: string };

export function emptyRecord(tenant: string, leadId: string): LeadRecord {
  return { tenant, lead_id: leadId, steps: {} };
}

const earlier = (a: string | undefined, b: string) => (a === undefined || b < a ? b : a);

function stepOf(record: LeadRecord, step: number): StepRecord {
  const key = String(step);
  const found = record.steps[key] ?? {};
  record.steps[key] = found;
  return found;
}

/** The record with the event applied; the same record (===) when the event changes nothing. */
export function applyEvent(record: LeadRecord, event: ProjectionEvent): LeadRecord {
  const next: LeadRecord = structuredClone(record);
  switch (event.kind) {
    case "scored":
      next.created_at ??= event.created_at;
      next.model_version ??= event.model_version;
      break;
    case "plan": {
      const plan = event.plan;
      next.created_at ??= plan.lead_created_at;
      // A plan is made once; its later puts (a cancellation) keep its sequence and steps.
      if (plan.skipped !== undefined && plan.steps.length === 0 && !plan.holdout) {
        next.enrolled ??= false;
        break;
      }
      next.sequence ??= plan.sequence?.name ?? BUILT_IN_SEQUENCE;
      next.enrolled = true;
      next.holdout ??= plan.holdout === true;
      for (const planned of plan.steps) {
        const step = stepOf(next, planned.step);
        if (planned.channel !== undefined) step.channel ??= planned.channel;
        if (planned.variant !== undefined) step.variant ??= planned.variant;
      }
      break;
    }
    case "result": {
      const step = stepOf(next, event.step);
      step.channel ??= event.channel;
      if (event.result === "ok") step.delivered_at = earlier(step.delivered_at, event.at);
      else if (event.result === "dead") step.failed = true;
      else if (event.result === "suppressed") step.suppressed = true;
      break;
    }
    case "outcome":
      if (event.outcome === "booked") next.booked_at = earlier(next.booked_at, event.at);
      if (next.last_outcome === undefined || event.at > next.last_outcome.at) {
        next.last_outcome = { kind: event.outcome, at: event.at };
      }
      break;
  }
  return sameRecord(record, next) ? record : next;
}

export function sameRecord(a: LeadRecord, b: LeadRecord): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** JSON with keys sorted, so two equal records compare equal however they were built. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : 1)))
      : v,
  );
}

/** Counters by document key, then by field: `{ "seq.acme.spring.2026-12-01": { "a.enrolled": 3 } } }`. */
export type Counters = Map<string, Map<string, number>>;

/** The arm of the holdout and of leads without variants in counter fields (names are [a-z0-9_-]). */
export const HOLDOUT_ARM = "@holdout";
export const NO_VARIANT_ARM = "@none";

export const sequenceDocKey = (tenant: string, sequence: string, day: string) =>
  `seq.${tenant}.${sequence}.${day}`;
export const stepsDocKey = (tenant: string, day: string) => `steps.${tenant}.${day}`;
export const leadRecordKey = (tenant: string, leadId: string) => `lead.${tenant}.${leadId}`;

/** The arm of a lead: the holdout, or the distinct variants of its steps in step order ("a", "a+b"). */
export function armOf(record: LeadRecord): string {
  if (record.holdout) return HOLDOUT_ARM;
  const names: string[] = [];
  for (const step of sortedSteps(record)) {
    if (step.record.variant !== undefined && !names.includes(step.record.variant))
      names.push(step.record.variant);
  }
  return names.length === 0 ? NO_VARIANT_ARM : names.join("+");
}

function sortedSteps(record: LeadRecord): { step: number; record: StepRecord }[] {
  return Object.entries(record.steps)
    .map(([step, r]) => ({ step: Number(step), record: r }))
    .sort((a, b) => a.step - b.step);
}

/** Whether the lead was booked within `windowMs` of its creation. */
export function converted(record: LeadRecord, windowMs: number): boolean {
  if (record.booked_at === undefined || record.created_at === undefined) return false;
  return Date.parse(record.booked_at) - Date.parse(record.created_at) <= windowMs;
}

function add(counters: Counters, doc: string, field: string, by: number): void {
  if (by === 0) return;
  let fields = counters.get(doc);
  if (fields === undefined) {
    fields = new Map();
    counters.set(doc, fields);
  }
  const value = (fields.get(field) ?? 0) + by;
  if (value === 0) fields.delete(field);
  else fields.set(field, value);
  if (fields.size === 0) counters.delete(doc);
}

/**
 * What one lead adds to the counters: nothing until its plan says it was enrolled in a sequence
 * and its creation time is known. Sequence document fields are `<arm>.<counter>`; steps document
 * fields are `<sequence>|<step>|<channel>|<variant or ->.<counter>`.
 */
export function contribution(
  record: LeadRecord,
  windowMs: number,
  into: Counters = new Map(),
  sign = 1,
): Counters {
  if (!record.enrolled || record.sequence === undefined || record.created_at === undefined) return into;
  const day = record.created_at.slice(0, 10);
  const hour = record.created_at.slice(11, 13);
  const doc = sequenceDocKey(record.tenant, record.sequence, day);
  const arm = armOf(record);
  const isConverted = converted(record, windowMs);
  const steps = sortedSteps(record);
  add(into, doc, `${arm}.enrolled`, sign);
  add(into, doc, `${arm}.delivered`, sign * steps.filter((s) => s.record.delivered_at !== undefined).length);
  add(into, doc, `${arm}.converted`, sign * (isConverted ? 1 : 0));
  if (record.last_outcome !== undefined) add(into, doc, `${arm}.outcome.${record.last_outcome.kind}`, sign);
  // By the hour of creation: how many leads are still inside their window is read at query time.
  else add(into, doc, `${arm}.open.${hour}`, sign);
  const stepsDoc = stepsDocKey(record.tenant, day);
  for (const { step, record: s } of steps) {
    if (s.channel === undefined) continue;
    const row = `${record.sequence}|${step}|${s.channel}|${s.variant ?? "-"}`;
    const state =
      s.delivered_at !== undefined ? "delivered" : s.suppressed ? "suppressed" : s.failed ? "failed" : null;
    if (state !== null) add(into, stepsDoc, `${row}.${state}`, sign);
    if (s.delivered_at !== undefined && isConverted && record.booked_at! > s.delivered_at) {
      add(into, stepsDoc, `${row}.converted_after`, sign);
    }
  }
  return into;
}

/** contribution(after) - contribution(before): what writing `after` over `before` changes. */
export function contributionDelta(
  before: LeadRecord | null,
  after: LeadRecord,
  windowMs: number,
  into: Counters = new Map(),
): Counters {
  contribution(after, windowMs, into, 1);
  if (before !== null) contribution(before, windowMs, into, -1);
  return into;
}

/** A stored counters document: field -> count (no zero fields). */
export type CounterDoc = Record<string, number>;

export function addToDoc(doc: CounterDoc, fields: Map<string, number>): CounterDoc {
  const next = { ...doc };
  for (const [field, by] of fields) {
    const value = (next[field] ?? 0) + by;
    if (value === 0) delete next[field];
    else next[field] = value;
  }
  return next;
}
