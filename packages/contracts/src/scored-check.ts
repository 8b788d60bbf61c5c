import { z } from "zod";
import { Intent, Sentiment, Urgency } from "./lead.js";
import { TOKEN_PATTERN } from "./subjects.js";

/**
 * A quick check of a decoded `lead.scored.v1` body: true only when the LeadScored schema
 * accepts it as it is. The scheduler decodes one per lead, and zod's parse was a tenth of its
 * time; this check is a few property reads. It is one-sided: anything it is not sure of (a
 * wrong field, an unusual shape) answers false, and decodeEvent then lets zod decide, so what is
 * rejected, and the field its error names, is zod's. A field added to the schema must be added
 * here (the contracts tests compare the two lists).
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

export function isSurelyLeadScored(json: unknown): boolean {
  if (!isPlainObject(json)) return false;
  const data = json.data;
  return (
    json.specversion === "1.0" &&
    isString(json.id, 1, 128) &&
    json.type === "lead.scored.v1" &&
    isString(json.source, 1) &&
    typeof json.time === "string" &&
    DATETIME.test(json.time) &&
    isString(json.subject, 1) &&
    json.datacontenttype === "application/json" &&
    typeof json.tenant === "string" &&
    TOKEN_PATTERN.test(json.tenant) &&
    isPlainObject(data) &&
    typeof data.lead_id === "string" &&
    TOKEN_PATTERN.test(data.lead_id) &&
    typeof data.created_at === "string" &&
    DATETIME.test(data.created_at) &&
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
