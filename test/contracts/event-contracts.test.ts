// The check the end-to-end runs apply to every message they see on lead.> and followup.>: it
// passes what the services publish and fails whatever a contract does not allow. Pure: no broker.

import { encodeEvent, idempotencyKey, makeEvent } from "@followup/contracts";
import { describe, expect, it } from "vitest";
import { contractProblems, type RecordedMessage } from "../support/index.js";

const LEAD = "0198c2d4-aaaa-7bbb-8ccc-123456789abc";
const at = new Date("2026-05-04T10:00:00.000Z");

function message(subject: string, body: unknown, headers: Record<string, string> = {}): RecordedMessage {
  const data = body === undefined ? new Uint8Array() : encodeEvent(body as { type: string });
  return {
    index: 0,
    subject,
    receivedAt: 0,
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    data,
    text: new TextDecoder().decode(data),
  };
}

const scored = makeEvent("lead.scored.v1", {
  source: "/lead-intake",
  subject: LEAD,
  tenant: "acme",
  data: {
    lead_id: LEAD,
    created_at: at.toISOString(),
    pred_prob: 0.85,
    score: 0.8,
    intent: "lead_capture",
    sentiment: "positive",
    urgency: "high",
    model_version: "m1",
  },
});
const timer = makeEvent("followup.timer.v1", {
  source: "/scheduler",
  subject: `${LEAD}/1`,
  tenant: "acme",
  data: { lead_id: LEAD, step: 1, delay_s: 2, due_at: at.toISOString(), ttl_s: 1 },
});
const dueData = {
  lead_id: LEAD,
  step: 1,
  delay_s: 2,
  due_at: at.toISOString(),
  idempotency_key: idempotencyKey({ tenant: "acme", leadId: LEAD, step: 1 }),
  channel: "hook",
  lead_created_at: at.toISOString(),
  pred_prob: 0.85,
  fired_at: at.toISOString(),
  replays: 0,
};
const due = makeEvent("followup.due.v1", {
  source: "/scheduler",
  subject: `${LEAD}/1`,
  tenant: "acme",
  data: dueData,
});
const firedHeaders = {
  "Nats-Stream": "FOLLOWUP_TIMERS",
  "Nats-Subject": `followup.timer.acme.${LEAD}.1`,
  "Nats-Sequence": "7",
  "Nats-Time-Stamp": at.toISOString(),
  "Nats-Last-Sequence": "0",
};
const ID = { "Nats-Msg-Id": `${LEAD}:1` };

describe("the event contract check", () => {
  it.each([
    ["lead.scored", message(`lead.scored.acme.${LEAD}`, scored)],
    [
      "a scored event with fields this version does not know",
      message(`lead.scored.acme.${LEAD}`, { ...scored, extension: 1, data: { ...scored.data, extra: true } }),
    ],
    ["followup.timer", message(`followup.timer.acme.${LEAD}.1`, timer, { "Nats-TTL": "1", ...ID })],
    ["followup.due", message(`followup.due.acme.${LEAD}.1`, due, ID)],
    [
      "a replayed followup.due",
      message(`followup.due.acme.${LEAD}.1`, { ...due, source: "/dead-letter-replay" }),
    ],
    [
      "followup.fired (a timer's copy)",
      message(`followup.fired.acme.${LEAD}.1`, undefined, { ...firedHeaders, "Nats-TTL": "1" }),
    ],
    [
      "followup.fired (an expiry)",
      message(`followup.fired.acme.${LEAD}.1`, undefined, {
        ...firedHeaders,
        "Nats-Marker-Reason": "MaxAge",
      }),
    ],
  ])("passes %s", (_label, m) => {
    expect(contractProblems(m)).toEqual([]);
  });

  it.each([
    ["a subject of no contract", message("lead.deleted.acme.L1", scored), /subject/],
    [
      "a body that breaks the schema",
      message(`lead.scored.acme.${LEAD}`, { ...scored, data: { ...scored.data, pred_prob: 2 } }),
      /data.pred_prob/,
    ],
    [
      "a body that is not JSON",
      { ...message(`lead.scored.acme.${LEAD}`, scored), data: new TextEncoder().encode("{") },
      /not JSON/,
    ],
    [
      "the wrong producer",
      message(`lead.scored.acme.${LEAD}`, { ...scored, source: "/dispatcher" }),
      /source/,
    ],
    ["another tenant than the subject's", message(`lead.scored.globex.${LEAD}`, scored), /tenant/],
    ["another lead than the subject's", message(`lead.scored.acme.L2`, scored), /lead_id/],
    ["another step than the subject's", message(`followup.due.acme.${LEAD}.2`, due, ID), /step/],
    [
      "a foreign idempotency key",
      message(`followup.due.acme.${LEAD}.1`, { ...due, data: { ...dueData, idempotency_key: "x:y:1" } }, ID),
      /idempotency_key/,
    ],
    [
      "a timer whose Nats-TTL is not its ttl_s",
      message(`followup.timer.acme.${LEAD}.1`, timer, { "Nats-TTL": "30", ...ID }),
      /Nats-TTL/,
    ],
    ["a due follow-up without its message id", message(`followup.due.acme.${LEAD}.1`, due), /Nats-Msg-Id/],
    ["an event type on the wrong subject", message(`followup.due.acme.${LEAD}.1`, timer, ID), /type/],
    [
      "a fired copy with a body",
      message(`followup.fired.acme.${LEAD}.1`, timer, { ...firedHeaders, "Nats-TTL": "1" }),
      /body/,
    ],
    [
      "a fired copy from another stream",
      message(`followup.fired.acme.${LEAD}.1`, undefined, {
        ...firedHeaders,
        "Nats-Stream": "LEADS",
        "Nats-Marker-Reason": "MaxAge",
      }),
      /Nats-Stream/,
    ],
    [
      "a fired copy of another timer",
      message(`followup.fired.acme.${LEAD}.1`, undefined, {
        ...firedHeaders,
        "Nats-Subject": `followup.timer.acme.${LEAD}.2`,
        "Nats-Marker-Reason": "MaxAge",
      }),
      /Nats-Subject/,
    ],
  ])("fails %s", (_label, m, problem) => {
    const problems = contractProblems(m);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join("; ")).toMatch(problem);
  });
});
