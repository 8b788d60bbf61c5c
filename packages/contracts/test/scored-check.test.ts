import { describe, expect, it } from "vitest";
import {
  ContractError,
  decodeEvent,
  encodeEvent,
  LeadScored,
  LeadScoredData,
  makeEvent,
} from "../src/index.js";
import { isSurelyLeadScored, SCORED_CHECK_FIELDS } from "../src/scored-check.js";

const valid = makeEvent("lead.scored.v1", {
  source: "/lead-intake",
  subject: "L-1",
  tenant: "acme",
  data: {
    lead_id: "L-1",
    created_at: "2026-11-28T10:00:00.000Z",
    pred_prob: 0.81,
    score: 0.8,
    intent: "lead_capture",
    sentiment: "neutral",
    urgency: "high",
    model_version: "conversion-v1",
    timezone: "Europe/Berlin",
  },
});

type Json = Record<string, unknown>;
const clone = (): Json & { data: Json } => JSON.parse(JSON.stringify(valid));

/** Values a field may be set to: valid and invalid ones of every kind. */
const VALUES: unknown[] = [
  undefined,
  null,
  "",
  "x",
  "a.b",
  "a".repeat(64),
  "a".repeat(65),
  "a".repeat(129),
  "1.0",
  "lead.scored.v1",
  "lead.outcome.v1",
  "application/json",
  "text/plain",
  "2026-11-28T10:00:00Z",
  "2026-11-28T10:00:00.123456Z",
  "2026-11-28T10:00:00+01:00",
  "2026-02-30T10:00:00Z",
  "2026-11-28",
  "lead_capture",
  "support",
  "positive",
  "normal",
  "urgent",
  0,
  1,
  0.5,
  -0.01,
  1.01,
  Number.POSITIVE_INFINITY,
  true,
  [],
  {},
  ["acme"],
];

/** Every variant of the valid event with one field (envelope or data) set to one of VALUES. */
function variants(): { field: string; body: unknown }[] {
  const out: { field: string; body: unknown }[] = [];
  const fields = [...SCORED_CHECK_FIELDS.envelope, "extra"];
  const dataFields = [...SCORED_CHECK_FIELDS.data, ...SCORED_CHECK_FIELDS.optionalData, "extra"];
  for (const field of fields) {
    for (const value of VALUES) {
      const body = clone();
      if (value === undefined) delete body[field];
      else body[field] = value;
      out.push({ field, body });
    }
  }
  for (const field of dataFields) {
    for (const value of VALUES) {
      const body = clone();
      if (value === undefined) delete body.data[field];
      else body.data[field] = value;
      out.push({ field: `data.${field}`, body });
    }
  }
  for (const body of [null, [], "x", 1, [valid], JSON.parse('{"__proto__": {"a": 1}}')]) {
    out.push({ field: "(root)", body });
  }
  return out;
}

describe("the quick check of lead.scored", () => {
  it("knows exactly the fields of the LeadScored schema (a field added there must be added here)", () => {
    expect([...SCORED_CHECK_FIELDS.envelope].sort()).toEqual(Object.keys(LeadScored.shape).sort());
    const data = LeadScoredData.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>;
    expect([...SCORED_CHECK_FIELDS.data, ...SCORED_CHECK_FIELDS.optionalData].sort()).toEqual(
      Object.keys(data).sort(),
    );
    // The optional ones are those the schema lets be absent.
    for (const field of Object.keys(data)) {
      expect(data[field]!.safeParse(undefined).success, field).toBe(
        (SCORED_CHECK_FIELDS.optionalData as readonly string[]).includes(field),
      );
    }
  });

  it("accepts only what zod accepts, and accepts an event lead-intake makes", () => {
    expect(isSurelyLeadScored(clone())).toBe(true);
    const cases = variants();
    let accepted = 0;
    for (const { field, body } of cases) {
      const quick = isSurelyLeadScored(body);
      const zod = LeadScored.safeParse(body).success;
      if (quick) {
        accepted++;
        expect(zod, `${field}: the quick check accepted what zod rejects`).toBe(true);
      }
    }
    // Not vacuous: valid variants (another valid id, score, zone, an extra field) pass quickly.
    expect(accepted).toBeGreaterThan(20);
  });

  it("decodeEvent decides as zod does: the same events rejected, naming the same field", () => {
    for (const { field, body } of variants()) {
      const text = JSON.stringify(body) ?? "null";
      const zod = LeadScored.safeParse(JSON.parse(text));
      let error: unknown;
      try {
        decodeEvent("lead.scored.v1", text);
      } catch (err) {
        error = err;
      }
      if (zod.success) {
        expect(error, field).toBeUndefined();
      } else {
        expect(error, field).toBeInstanceOf(ContractError);
        const paths = zod.error.issues.map((i) =>
          i.path.length > 0 ? i.path.map(String).join(".") : "(root)",
        );
        expect(
          (error as ContractError).issues.map((i) => i.path),
          field,
        ).toEqual(paths);
      }
    }
  });

  it("a number JSON reads as infinite is zod's to reject", () => {
    const text = JSON.stringify(valid).replace('"pred_prob":0.81', '"pred_prob":1e999');
    expect(() => decodeEvent("lead.scored.v1", text)).toThrow(/data\.pred_prob/);
  });

  it("decodes a valid event to the same values as zod's parse", () => {
    const bytes = encodeEvent(valid);
    expect(decodeEvent("lead.scored.v1", bytes)).toEqual(
      LeadScored.parse(JSON.parse(new TextDecoder().decode(bytes))),
    );
  });
});
