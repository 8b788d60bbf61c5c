import { z } from "zod";
import { AttemptResult } from "./events.js";
import { Intent, Sentiment, Urgency } from "./lead.js";
import { FollowupPlan, PlannedStepState } from "./records.js";
import { TOKEN_PATTERN } from "./subjects.js";

/**
 * Quick checks of the records the scheduler handles once per lead (a lead.scored decoded, a
 * plan and a timer encoded), where zod's parse was a fifth of its time; each check is a few
 * property reads. Each is one-sided: true only when the schema accepts the value exactly as it
 * is, and anything it is not sure of (a wrong field, an unusual shape, another order of keys)
 * answers false, and zod then decides as before. So what is rejected, and the field an error
 * names, is zod's, and what is written is byte for byte what zod's output gave. A field added to
 * a schema must be added here (the contracts tests compare the lists).
 */

/** zod's own pattern of z.iso.datetime(), so the two cannot disagree about a time. */
const DATETIME = z.iso.datetime()._zod.def.pattern as RegExp;

const INTENTS: ReadonlySet<unknown> = new Set(Intent.options);
const SENTIMENTS: ReadonlySet<unknown> = new Set(Sentiment.options);
const URGENCIES: ReadonlySet<unknown> = new Set(Urgency.options);

/** The envelope's fields and the data's, required and optional, as this check knows them. */
export const SCORED_CHECK_FIELDS = {
  envelope: ["specversion", "id", "type", "source", "time", "subject", "datacontenttype", "tenant", "data"],
  data: ["lead_id", "created_at", "pred_prob", "score", "intent", "sentiment", "urgency", "model_version"],
  optionalData: ["timezone", "phone_timezone"],
} as const;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  // A "__proto__" key of JSON is an own property zod would copy differently: left to zod.
  return (proto === Object.prototype || proto === null) && !Object.hasOwn(value, "__proto__");
}

function isString(value: unknown, min: number, max = Number.POSITIVE_INFINITY): value is string {
  return typeof value === "string" && value.length >= min && value.length <= max;
}

function isProbability(value: unknown): boolean {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= 1;
}

function isZone(value: unknown): boolean {
  return value === undefined || isString(value, 1, 64);
}

function isDatetime(value: unknown): boolean {
  return typeof value === "string" && DATETIME.test(value);
}

function isToken(value: unknown): boolean {
  return typeof value === "string" && TOKEN_PATTERN.test(value);
}

function hasKeys(value: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(value);
  if (own.length !== keys.length) return false;
  for (let i = 0; i < keys.length; i++) if (own[i] !== keys[i]) return false;
  return true;
}

/** The envelope's attributes of an event of `type` as eventSchema accepts them (its data not looked at). */
function isEnvelope(event: Record<string, unknown>, type: string): boolean {
  return (
    event.specversion === "1.0" &&
    isString(event.id, 1, 128) &&
    event.type === type &&
    isString(event.source, 1) &&
    isDatetime(event.time) &&
    isString(event.subject, 1) &&
    event.datacontenttype === "application/json" &&
    isToken(event.tenant)
  );
}

/** A decoded `lead.scored.v1` body that LeadScored accepts (decodeEvent: returned as it is). */
export function isSurelyLeadScored(json: unknown): boolean {
  if (!isPlainObject(json)) return false;
  const data = json.data;
  return (
    isEnvelope(json, "lead.scored.v1") &&
    isPlainObject(data) &&
    isToken(data.lead_id) &&
    isDatetime(data.created_at) &&
    isProbability(data.pred_prob) &&
    isProbability(data.score) &&
    INTENTS.has(data.intent) &&
    SENTIMENTS.has(data.sentiment) &&
    URGENCIES.has(data.urgency) &&
    typeof data.model_version === "string" &&
    isZone(data.timezone) &&
    isZone(data.phone_timezone)
  );
}

/**
 * A followup.timer.v1 event as makeEvent builds it, with the data of a timer in the schema's
 * order (service-kit's timerParts): zod's output would be the same object, key for key.
 */
export const TIMER_CHECK_FIELDS = {
  envelope: ["specversion", "id", "type", "source", "time", "subject", "datacontenttype", "tenant", "data"],
  data: ["lead_id", "step", "delay_s", "due_at", "ttl_s"],
} as const;

export function isSurelyTimerEvent(event: unknown): boolean {
  if (!isPlainObject(event) || !hasKeys(event, TIMER_CHECK_FIELDS.envelope)) return false;
  const data = event.data;
  return (
    isEnvelope(event, "followup.timer.v1") &&
    isPlainObject(data) &&
    hasKeys(data, TIMER_CHECK_FIELDS.data) &&
    isToken(data.lead_id) &&
    Number.isSafeInteger(data.step) &&
    (data.step as number) >= 1 &&
    (data.step as number) <= 1000 &&
    isPositive(data.delay_s) &&
    isDatetime(data.due_at) &&
    Number.isSafeInteger(data.ttl_s) &&
    (data.ttl_s as number) >= 1
  );
}

function isPositive(value: unknown): boolean {
  return typeof value === "number" && Number.isFinite(value) && value > 0;
}

/**
 * A plan of the built-in sequence (no sequence, channel, template or skip recorded), its keys
 * and its steps' keys in the schema's order, as the scheduler's planLead makes it.
 */
export const PLAN_CHECK_FIELDS = {
  plan: ["lead_id", "tenant", "lead_created_at", "pred_prob", "planned_at", "steps"],
  step: ["step", "delay_s", "due_at", "state"],
} as const;

const STEP_STATES: ReadonlySet<unknown> = new Set(PlannedStepState.options);

function isSurelyBuiltInStep(step: unknown): boolean {
  return (
    isPlainObject(step) &&
    hasKeys(step, PLAN_CHECK_FIELDS.step) &&
    Number.isSafeInteger(step.step) &&
    (step.step as number) >= 1 &&
    isPositive(step.delay_s) &&
    isDatetime(step.due_at) &&
    STEP_STATES.has(step.state)
  );
}

export function isSurelyBuiltInPlan(plan: unknown): boolean {
  return (
    isPlainObject(plan) &&
    hasKeys(plan, PLAN_CHECK_FIELDS.plan) &&
    isToken(plan.lead_id) &&
    isToken(plan.tenant) &&
    isDatetime(plan.lead_created_at) &&
    isProbability(plan.pred_prob) &&
    isDatetime(plan.planned_at) &&
    areSurelyBuiltInSteps(plan.steps)
  );
}

function areSurelyBuiltInSteps(steps: unknown): boolean {
  if (!Array.isArray(steps) || Object.getPrototypeOf(steps) !== Array.prototype) return false;
  // By index, so that a hole (which zod reads as undefined) is not sure either.
  for (let i = 0; i < steps.length; i++) if (!isSurelyBuiltInStep(steps[i])) return false;
  return true;
}

/**
 * A plan as the followup_plans bucket stores it: checked against FollowupPlan (zod's output,
 * or the plan itself when the quick check is sure it is the same), as JSON. Throws zod's error
 * for a plan that breaks its contract.
 */
export function encodePlan(plan: FollowupPlan): string {
  return JSON.stringify(isSurelyBuiltInPlan(plan) ? plan : FollowupPlan.parse(plan));
}

/**
 * A plan read from the followup_plans bucket (its JSON parsed), checked against FollowupPlan:
 * the value itself when the quick check is sure zod accepts it as it is (a built-in plan, read
 * once per fired step), else zod's output. Throws zod's error for a plan that breaks its contract.
 */
export function decodePlan(json: unknown): FollowupPlan {
  return isSurelyBuiltInPlan(json) ? (json as FollowupPlan) : FollowupPlan.parse(json);
}

/**
 * A followup.result.v1 event as the dispatcher's resultEvent builds it (one per attempt): its
 * data's keys in the schema's order, the optional ones present or not. zod's output would be
 * the same object, key for key.
 */
export const RESULT_CHECK_FIELDS = {
  envelope: TIMER_CHECK_FIELDS.envelope,
  data: [
    "lead_id",
    "step",
    "delay_s",
    "due_at",
    "idempotency_key",
    "channel",
    "attempt",
    "result",
    "status_code",
    "error",
    "duration_ms",
    "retry_in_ms",
    "lateness_ms",
    "provider",
    "provider_message_id",
    "reason",
  ],
  optionalData: ["error", "retry_in_ms", "lateness_ms", "provider", "provider_message_id", "reason"],
} as const;

/** Made on first use: events.ts imports this module, so AttemptResult is not there while it loads. */
let results: ReadonlySet<unknown> | undefined;
function isAttemptResult(value: unknown): boolean {
  if (results === undefined) results = new Set(AttemptResult.options);
  return results.has(value);
}

/** Each field of a result's data: whether a value of it is surely valid. */
const RESULT_DATA_CHECKS: Record<(typeof RESULT_CHECK_FIELDS.data)[number], (value: unknown) => boolean> = {
  lead_id: isToken,
  step: (v) => Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= 1000,
  delay_s: isPositive,
  due_at: isDatetime,
  idempotency_key: (v) => isString(v, 5),
  channel: (v) => isString(v, 1, 64),
  attempt: (v) => Number.isSafeInteger(v) && (v as number) >= 1,
  result: isAttemptResult,
  status_code: (v) => v === null || Number.isSafeInteger(v),
  error: (v) => typeof v === "string",
  duration_ms: isNonNegative,
  retry_in_ms: isNonNegative,
  lateness_ms: (v) => typeof v === "number" && Number.isFinite(v),
  provider: (v) => isString(v, 1, 64),
  provider_message_id: (v) => isString(v, 1, 256),
  reason: (v) => isString(v, 1, 64),
};

const RESULT_OPTIONAL: ReadonlySet<string> = new Set(RESULT_CHECK_FIELDS.optionalData);

function isNonNegative(value: unknown): boolean {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

export function isSurelyResultEvent(event: unknown): boolean {
  if (!isPlainObject(event) || !hasKeys(event, RESULT_CHECK_FIELDS.envelope)) return false;
  const data = event.data;
  if (!isEnvelope(event, "followup.result.v1") || !isPlainObject(data)) return false;
  // The data's keys: the schema's, in its order, each optional one present or not (an undefined
  // value is a key zod's output would not have: not sure).
  const own = Object.keys(data);
  let at = 0;
  for (const field of RESULT_CHECK_FIELDS.data) {
    if (own[at] === field) {
      if (!RESULT_DATA_CHECKS[field](data[field])) return false;
      at++;
    } else if (!RESULT_OPTIONAL.has(field)) {
      return false;
    }
  }
  return at === own.length;
}
