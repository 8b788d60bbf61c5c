import { describe, expect, it } from "vitest";
import {
  ContractError,
  decodeEvent,
  decodePlan,
  encodeEvent,
  encodePlan,
  FollowupPlan,
  FollowupResult,
  FollowupResultData,
  FollowupTimer,
  FollowupTimerData,
  LeadScored,
  LeadScoredData,
  makeEvent,
  PlannedStep,
} from "../src/index.js";
import {
  isSurelyBuiltInPlan,
  isSurelyLeadScored,
  isSurelyResultEvent,
  isSurelyTimerEvent,
  PLAN_CHECK_FIELDS,
  RESULT_CHECK_FIELDS,
  SCORED_CHECK_FIELDS,
  TIMER_CHECK_FIELDS,
} from "../src/quick-checks.js";

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

/** The keys of a zod object's shape that it requires, in the schema's order. */
function requiredKeys(shape: Record<string, { safeParse(v: unknown): { success: boolean } }>): string[] {
  return Object.keys(shape).filter((key) => !shape[key]!.safeParse(undefined).success);
}

/** Every variant of `base` with one field of it (or of the object `at` picks) set to one of VALUES. */
function fieldVariants<T>(
  base: T,
  objects: Record<string, (value: T) => Json>,
): { field: string; body: T }[] {
  const out: { field: string; body: T }[] = [];
  for (const [name, at] of Object.entries(objects)) {
    for (const field of [...Object.keys(at(base)), "extra"]) {
      for (const value of [...VALUES, 2, 1000, 1001, 3600, 1.5, "pending", "due", "sent"]) {
        const body = JSON.parse(JSON.stringify(base)) as T;
        if (value === undefined) delete at(body)[field];
        else at(body)[field] = value;
        out.push({ field: `${name}${field}`, body });
      }
    }
  }
  return out;
}

describe("the quick check of a built-in plan", () => {
  const plan: FollowupPlan = {
    lead_id: "L-1",
    tenant: "acme",
    lead_created_at: "2026-11-28T10:00:00.000Z",
    pred_prob: 0.81,
    planned_at: "2026-11-28T10:00:01.000Z",
    steps: [
      { step: 1, delay_s: 3600, due_at: "2026-11-28T11:00:00.000Z", state: "pending" },
      { step: 2, delay_s: 7200, due_at: "2026-11-28T12:00:00.000Z", state: "pending" },
    ],
  };

  it("knows the required fields of FollowupPlan and PlannedStep, in the schemas' order", () => {
    expect([...PLAN_CHECK_FIELDS.plan]).toEqual(requiredKeys(FollowupPlan.shape as never));
    expect([...PLAN_CHECK_FIELDS.step]).toEqual(requiredKeys(PlannedStep.shape as never));
  });

  it("is sure only of plans zod accepts, whose JSON is then what zod's output gives", () => {
    expect(isSurelyBuiltInPlan(plan)).toBe(true);
    let accepted = 0;
    const cases = fieldVariants(plan, {
      "": (p) => p as unknown as Json,
      "steps.0.": (p) => p.steps[0] as unknown as Json,
    });
    // The same plan with its keys in another order: zod's output would reorder them.
    const { lead_id, tenant, ...rest } = plan;
    const reordered = { tenant, lead_id, ...rest };
    for (const { field, body } of [...cases, { field: "reordered", body: reordered }]) {
      const zod = FollowupPlan.safeParse(body);
      if (isSurelyBuiltInPlan(body)) {
        accepted++;
        expect(zod.success, `${field}: the quick check accepted what zod rejects`).toBe(true);
      }
      if (zod.success) expect(encodePlan(body), field).toBe(JSON.stringify(zod.data));
      else expect(() => encodePlan(body), field).toThrow();
    }
    expect(accepted).toBeGreaterThan(10);
    // A plan recording a sequence (not the built-in shape) is zod's, and encoded as before.
    const recorded = { ...plan, sequence: { name: "s", revision: 1, extra: true }, stop_on: ["booked"] };
    expect(isSurelyBuiltInPlan(recorded)).toBe(false);
    expect(encodePlan(recorded)).toBe(JSON.stringify(FollowupPlan.parse(recorded)));
  });

  it("decodePlan reads a stored plan to the values zod's parse gives, and throws where zod throws", () => {
    let quick = 0;
    const cases = fieldVariants(plan, {
      "": (p) => p as unknown as Json,
      "steps.0.": (p) => p.steps[0] as unknown as Json,
    });
    for (const { field, body } of cases) {
      // As read from the bucket: the JSON of what was stored.
      const stored = JSON.parse(JSON.stringify(body));
      const zod = FollowupPlan.safeParse(stored);
      if (isSurelyBuiltInPlan(stored)) quick++;
      if (zod.success) expect(decodePlan(stored), field).toEqual(zod.data);
      else expect(() => decodePlan(stored), field).toThrow();
    }
    expect(quick).toBeGreaterThan(10);
    // A cancelled plan, or one of a sequence, is zod's: the same values.
    const cancelled = { ...plan, cancelled: { at: "2026-11-28T10:30:00.000Z", reason: "booked" } };
    expect(decodePlan(JSON.parse(JSON.stringify(cancelled)))).toEqual(FollowupPlan.parse(cancelled));
  });
});

/** makeEvent of `type` from `source` for lead L-1's step 1, with the data given. */
function eventMaker(type: "followup.timer.v1" | "followup.result.v1", source: string) {
  return (data: Json) => makeEvent(type, { source, subject: "L-1/1", tenant: "acme", data: data as never });
}

describe("the quick check of a timer event", () => {
  const data = { lead_id: "L-1", step: 1, delay_s: 3600, due_at: "2026-11-28T11:00:00.000Z", ttl_s: 3599 };
  const make = eventMaker("followup.timer.v1", "/scheduler");

  it("knows the fields of FollowupTimer, in the schema's order", () => {
    expect([...TIMER_CHECK_FIELDS.envelope]).toEqual(Object.keys(FollowupTimer.shape));
    expect([...TIMER_CHECK_FIELDS.data]).toEqual(Object.keys(FollowupTimerData.shape));
  });

  it("makeEvent makes the same bytes as zod's output, and refuses what zod refuses", () => {
    expect(isSurelyTimerEvent(make(data))).toBe(true);
    let accepted = 0;
    for (const { field, body } of fieldVariants(data, { "data.": (d) => d as Json })) {
      const candidate = { ...make(data), data: body };
      const zod = FollowupTimer.safeParse(candidate);
      if (isSurelyTimerEvent(candidate)) {
        accepted++;
        expect(zod.success, `${field}: the quick check accepted what zod rejects`).toBe(true);
      }
      if (zod.success) {
        const event = make(body);
        expect(encodeEvent(event), field).toEqual(encodeEvent(FollowupTimer.parse({ ...event })));
      } else {
        expect(() => make(body), field).toThrow();
      }
    }
    expect(accepted).toBeGreaterThan(5);
  });
});

describe("the quick check of a result event", () => {
  const data = {
    lead_id: "L-1",
    step: 1,
    delay_s: 3600,
    due_at: "2026-11-28T11:00:00.000Z",
    idempotency_key: "acme:L-1:1",
    channel: "hook",
    attempt: 1,
    result: "ok",
    status_code: 200,
    duration_ms: 12,
    lateness_ms: 35,
  };
  const make = eventMaker("followup.result.v1", "/dispatcher");

  it("knows the fields of FollowupResult, in the schema's order, and which are optional", () => {
    expect([...RESULT_CHECK_FIELDS.envelope]).toEqual(Object.keys(FollowupResult.shape));
    expect([...RESULT_CHECK_FIELDS.data]).toEqual(Object.keys(FollowupResultData.shape));
    const required = requiredKeys(FollowupResultData.shape as never);
    expect([...RESULT_CHECK_FIELDS.optionalData]).toEqual(
      RESULT_CHECK_FIELDS.data.filter((key) => !required.includes(key)),
    );
  });

  it("makeEvent makes the same bytes as zod's output, and refuses what zod refuses", () => {
    expect(isSurelyResultEvent(make(data))).toBe(true);
    const retried = {
      ...data,
      result: "error",
      status_code: null,
      error: "ECONNREFUSED",
      duration_ms: 1.5,
      retry_in_ms: 2000,
      provider: "twilio",
      provider_message_id: "SM123",
      reason: "timeout",
    };
    delete (retried as Partial<typeof retried>).lateness_ms;
    expect(isSurelyResultEvent(make(retried))).toBe(true);
    let accepted = 0;
    const cases = [
      ...fieldVariants(data, { "data.": (d) => d as Json }),
      ...fieldVariants(retried, { "retried.": (d) => d as Json }),
      // Keys out of the schema's order: zod's output would reorder them.
      { field: "reordered", body: (({ lead_id, ...rest }) => ({ ...rest, lead_id }))(data) },
      { field: "optional undefined", body: { ...data, error: undefined } },
    ];
    for (const { field, body } of cases) {
      const candidate = { ...make(data), data: body };
      const zod = FollowupResult.safeParse(candidate);
      if (isSurelyResultEvent(candidate)) {
        accepted++;
        expect(zod.success, `${field}: the quick check accepted what zod rejects`).toBe(true);
        expect(JSON.stringify(candidate), field).toBe(JSON.stringify(zod.data));
      }
      if (zod.success) {
        const event = make(body as Json);
        expect(encodeEvent(event), field).toEqual(encodeEvent(FollowupResult.parse({ ...event })));
      } else {
        expect(() => make(body as Json), field).toThrow();
      }
    }
    expect(accepted).toBeGreaterThan(10);
  });
});
