// Small builders the services' own tests and the system tests share: the test hook secret, a
// stored lead, a due follow-up and its dead letter, each as lead-intake, the scheduler or the
// dispatcher would write it.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  encodeEvent,
  type FollowupDueData,
  idempotencyKey,
  leadKey,
  type ModelRecord,
  makeEvent,
  type StoredLead,
  subjects,
} from "@followup/contracts";
import { parseWebhookSecret } from "@followup/service-kit";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

/** The Standard Webhooks secret (`whsec_...`) of tests that need a fixed one. */
export const HOOK_SECRET = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
/** {@link HOOK_SECRET}'s key bytes, what the signing and verifying code takes. */
export const HOOK_KEY = parseWebhookSecret(HOOK_SECRET);

/** A fresh random hook secret (`whsec_` + 32 bytes, base64). */
export function newHookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

/** A lead as lead-intake stores it in the `leads` bucket; `extra` overrides any field. */
export function storedLead(tenant: string, leadId: string, extra: Partial<StoredLead> = {}): StoredLead {
  return {
    lead_id: leadId,
    tenant,
    name: "Alex Rivera",
    phone: "+1-555-0199",
    details: "Looking for a quote this week",
    enrichment: { intent: "lead_capture", sentiment: "positive", urgency: "high", score: 0.8 },
    pred_prob: 0.9,
    model_version: "test",
    created_at: new Date().toISOString(),
    ...extra,
  };
}

/** Stores `lead` under its key in a `leads` bucket (anything with a KV's `put`). */
export async function putLead(
  kv: { put(key: string, value: string): Promise<unknown> },
  lead: StoredLead,
): Promise<void> {
  await kv.put(leadKey({ tenant: lead.tenant, leadId: lead.lead_id }), JSON.stringify(lead));
}

/** A due follow-up as the scheduler publishes it (due now). */
export function dueData(tenant: string, leadId: string, step: number): FollowupDueData {
  const now = new Date().toISOString();
  return {
    lead_id: leadId,
    step,
    delay_s: 60 * step,
    due_at: now,
    idempotency_key: idempotencyKey({ tenant, leadId, step }),
    channel: "hook",
    lead_created_at: now,
    pred_prob: 0.9,
    fired_at: now,
    replays: 0,
    attempts_before: 0,
  };
}

/** Publishes the dead letter of a follow-up whose 8 attempts all got HTTP 503, as the dispatcher would. */
export async function publishDeadLetter(
  nc: NatsConnection,
  tenant: string,
  leadId: string,
  step: number,
): Promise<void> {
  const due = dueData(tenant, leadId, step);
  const { lead_id, delay_s, due_at, idempotency_key, channel } = due;
  const exhausted = {
    attempts: 8,
    reason: "exhausted",
    last_status_code: 503,
    last_error: "HTTP 503",
  } as const;
  const event = makeEvent("followup.dead.v1", {
    source: "/dispatcher",
    subject: `${leadId}/${step}`,
    tenant,
    data: { lead_id, step, delay_s, due_at, idempotency_key, channel, ...exhausted, due },
  });
  await jetstream(nc).publish(subjects.followupDead(tenant, leadId, step), encodeEvent(event));
}

/**
 * A model record as train:outcomes promotes one: the committed model's content under `version`,
 * with an evaluation of AUC 0.8 and Brier 0.2 (for ModelRegistry.promote in tests).
 */
export function modelRecord(version: string, at: Date = new Date()): ModelRecord {
  const model = JSON.parse(
    readFileSync(new URL("../../services/lead-intake/model/conversion-model.json", import.meta.url), "utf8"),
  );
  const iso = at.toISOString();
  return {
    version,
    model: { ...model, version },
    evaluation: {
      auc: 0.8,
      brier: 0.2,
      base_rate: 0.4,
      n_train: 10,
      n_test: 10,
      calibration: [],
      current_auc: null,
      current_version: null,
    },
    window: { train_from: iso, train_until: iso, test_from: iso, test_until: iso, horizon_ms: 1000 },
    promoted_at: iso,
  };
}
