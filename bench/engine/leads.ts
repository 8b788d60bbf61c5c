import {
  encodeEvent,
  leadKey,
  makeEvent,
  type StoredLead,
  subjects,
  type Topology,
} from "@followup/contracts";
import type { JetStreamClient } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { BENCH_TENANT, benchLeadId } from "../followups.js";
import { inWindow } from "../window.js";

/**
 * Puts scored leads where lead-intake would: the lead in the `leads` bucket, then its
 * `lead.scored` event on the LEADS stream, built and validated with the shared contract. The
 * scheduler and the dispatcher read both, so a follow-up of a seeded lead goes the whole way.
 */
export interface SeedOptions {
  count: number;
  /** The lead's created_at: its follow-ups are due at created_at + each delay. */
  createdAt: (index: number) => Date;
  /** A qualifying score by default (>= FOLLOWUP_RULE_TOP_P 0.70). */
  predProb?: number;
  /** Publishes in flight. */
  window?: number;
  /** Index of the first lead, so several seeds do not collide. */
  firstIndex?: number;
  /**
   * Whether to store the lead itself in the `leads` bucket (default true). Scheduling alone never
   * reads it (the marker handler and the dispatcher do), so the scale workload leaves it out.
   */
  leadRecords?: boolean;
}

export async function seedScoredLeads(
  js: JetStreamClient,
  topology: Topology,
  options: SeedOptions,
): Promise<number> {
  const leads = await new Kvm(js).open(topology.buckets.leads.bucket);
  const predProb = options.predProb ?? 0.86;
  const first = options.firstIndex ?? 0;
  return inWindow(options.count, options.window ?? 500, async (i) => {
    const leadId = benchLeadId(first + i);
    const createdAt = options.createdAt(i).toISOString();
    const lead: StoredLead = {
      lead_id: leadId,
      tenant: BENCH_TENANT,
      name: "Bench Lead",
      phone: "+1 555 0100",
      details: "Interested in a demo next week; please call back about pricing for 20 seats.",
      enrichment: { intent: "lead_capture", sentiment: "positive", urgency: "high", score: 0.8 },
      pred_prob: predProb,
      model_version: "bench",
      created_at: createdAt,
    };
    if (options.leadRecords !== false)
      await leads.put(leadKey({ tenant: BENCH_TENANT, leadId }), JSON.stringify(lead));
    const event = makeEvent("lead.scored.v1", {
      source: "/lead-intake",
      subject: leadId,
      tenant: BENCH_TENANT,
      data: {
        lead_id: leadId,
        created_at: createdAt,
        pred_prob: predProb,
        score: 0.8,
        intent: "lead_capture",
        sentiment: "positive",
        urgency: "high",
        model_version: "bench",
      },
    });
    await js.publish(subjects.leadScored(BENCH_TENANT, leadId), encodeEvent(event), { msgID: event.id });
  });
}
