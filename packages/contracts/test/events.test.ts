import { afterEach, describe, expect, it, vi } from "vitest";
import {
  ContractError,
  decodeEvent,
  EVENT_SCHEMAS,
  encodeEvent,
  FollowupDue,
  LeadScored,
  makeEvent,
} from "../src/index.js";

const LEAD = "0192f5e4-7b3a-7cc0-9b1e-2f4d5a6b7c8d";
const scoredData = {
  lead_id: LEAD,
  created_at: "2026-11-28T10:00:00.000Z",
  pred_prob: 0.81,
  score: 0.8,
  intent: "lead_capture" as const,
  sentiment: "neutral" as const,
  urgency: "high" as const,
  model_version: "conversion-v1",
};

describe("event envelope", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("uses the CloudEvents 1.0 attribute names plus tenant, with a versioned type", () => {
    const event = makeEvent("lead.scored.v1", {
      source: "/lead-intake",
      subject: LEAD,
      tenant: "acme",
      data: scoredData,
    });
    expect(Object.keys(event).sort()).toEqual(
      ["data", "datacontenttype", "id", "source", "specversion", "subject", "tenant", "time", "type"].sort(),
    );
    expect(event.specversion).toBe("1.0");
    expect(event.type).toBe("lead.scored.v1");
    expect(event.datacontenttype).toBe("application/json");
    expect(new Date(event.time).toString()).not.toBe("Invalid Date");
    expect(event.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("round-trips through bytes", () => {
    const event = makeEvent("lead.scored.v1", {
      source: "/lead-intake",
      subject: LEAD,
      tenant: "acme",
      data: scoredData,
    });
    expect(decodeEvent("lead.scored.v1", encodeEvent(event))).toEqual(event);
  });

  it("encodes an event as the UTF-8 bytes of its JSON, non-ASCII text included", () => {
    const event = { type: "note.v1", text: "Zoë called: 日本語, ✓" };
    const bytes = encodeEvent(event);
    expect([...bytes]).toEqual([...new TextEncoder().encode(JSON.stringify(event))]);
    expect(new TextDecoder().decode(bytes)).toBe(JSON.stringify(event));
  });

  it("stamps each event with the millisecond it was made", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const made = (at: string) => {
      vi.setSystemTime(new Date(at));
      return makeEvent("lead.scored.v1", { source: "/t", subject: LEAD, tenant: "acme", data: scoredData })
        .time;
    };
    expect(made("2026-03-08T09:59:59.999Z")).toBe("2026-03-08T09:59:59.999Z");
    expect(made("2026-03-08T09:59:59.999Z")).toBe("2026-03-08T09:59:59.999Z");
    expect(made("2026-03-08T10:00:00.000Z")).toBe("2026-03-08T10:00:00.000Z");
    expect(made("2026-03-08T10:00:00.001Z")).toBe("2026-03-08T10:00:00.001Z");
    const given = new Date("2026-11-01T06:00:00.000Z");
    expect(
      makeEvent("lead.scored.v1", {
        source: "/t",
        subject: LEAD,
        tenant: "acme",
        data: scoredData,
        time: given,
      }).time,
    ).toBe("2026-11-01T06:00:00.000Z");
  });

  it("refuses to build an event its contract does not allow", () => {
    expect(() =>
      makeEvent("lead.scored.v1", {
        source: "/lead-intake",
        subject: LEAD,
        tenant: "acme",
        data: { ...scoredData, pred_prob: 1.5 },
      }),
    ).toThrow();
    expect(() =>
      makeEvent("lead.scored.v1", { source: "/lead-intake", subject: LEAD, tenant: "a.b", data: scoredData }),
    ).toThrow();
  });

  it("accepts unknown extra fields, in the envelope and in data", () => {
    const event = makeEvent("lead.scored.v1", {
      source: "/lead-intake",
      subject: LEAD,
      tenant: "acme",
      data: scoredData,
    });
    const extended = { ...event, traceparent: "00-abc", data: { ...event.data, future_field: [1, 2] } };
    const decoded = decodeEvent("lead.scored.v1", JSON.stringify(extended));
    expect(decoded.data.pred_prob).toBe(0.81);
    expect((decoded as Record<string, unknown>).traceparent).toBe("00-abc");
  });

  it("names every failing field", () => {
    const event = makeEvent("lead.scored.v1", {
      source: "/lead-intake",
      subject: LEAD,
      tenant: "acme",
      data: scoredData,
    });
    const broken = {
      ...event,
      specversion: "0.3",
      data: { ...event.data, intent: "shopping", pred_prob: "high" },
    };
    try {
      decodeEvent("lead.scored.v1", JSON.stringify(broken));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ContractError);
      const paths = (err as ContractError).issues.map((i) => i.path).sort();
      expect(paths).toEqual(["data.intent", "data.pred_prob", "specversion"]);
    }
  });

  it("refuses bytes that are not JSON, and a wrong type", () => {
    expect(() => decodeEvent("lead.scored.v1", "{not json")).toThrow(/not JSON/);
    const due = {
      ...makeEvent("lead.scored.v1", { source: "/x", subject: LEAD, tenant: "acme", data: scoredData }),
    };
    expect(() => decodeEvent("followup.due.v1", JSON.stringify(due))).toThrow(ContractError);
  });

  it("defaults replays of a due follow-up to 0", () => {
    const event = makeEvent("followup.due.v1", {
      source: "/scheduler",
      subject: `${LEAD}/1`,
      tenant: "acme",
      data: {
        lead_id: LEAD,
        step: 1,
        delay_s: 2,
        due_at: "2026-11-28T10:00:02.000Z",
        idempotency_key: `acme:${LEAD}:1`,
        channel: "hook",
        lead_created_at: "2026-11-28T10:00:00.000Z",
        pred_prob: 0.8,
        fired_at: "2026-11-28T10:00:02.010Z",
      },
    });
    expect(event.data.replays).toBe(0);
    expect(FollowupDue.safeParse(event).success).toBe(true);
    expect(LeadScored.safeParse(event).success).toBe(false);
  });

  it("has one schema per type, keyed by its type", () => {
    for (const [type, schema] of Object.entries(EVENT_SCHEMAS)) {
      expect(schema.shape.type.value).toBe(type);
      expect(type).toMatch(/\.v\d+$/);
    }
  });
});
