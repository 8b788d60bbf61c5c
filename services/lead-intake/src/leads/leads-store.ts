import { type LeadRef, leadKey, type RecordedOutcome, type StoredLead } from "@followup/contracts";
import { isWrongLastSequence, readLead } from "@followup/service-kit";
import type { KV } from "@nats-io/kv";

/**
 * Leads in the `leads` KV bucket under `<tenant>.<leadId>`: the only place personal data is
 * kept. The tenant is part of the key, so a lead of another tenant is simply not found.
 */

const OUTCOME_WRITE_ATTEMPTS = 5;

export class LeadContractError extends Error {}

function encode(lead: StoredLead): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(lead));
}

/** Stores a new lead; fails if the key exists (a lead is never overwritten by a new one). */
export async function createLead(kv: KV, lead: StoredLead): Promise<number> {
  return kv.create(leadKey({ tenant: lead.tenant, leadId: lead.lead_id }), encode(lead));
}

/** The lead and its revision, or null when the tenant has no such lead. */
export async function getLead(kv: KV, ref: LeadRef): Promise<{ lead: StoredLead; revision: number } | null> {
  const read = await readLead(kv, ref);
  if (read.status === "absent") return null;
  if (read.status === "invalid") {
    throw new LeadContractError(`lead ${leadKey(ref)} in the leads bucket ${read.error}`);
  }
  return { lead: read.lead, revision: read.revision };
}

/**
 * Records an outcome on the lead with compare-and-set: a concurrent writer (another copy of
 * lead-intake, another outcome) makes the update fail and it is re-read and retried, so no
 * write is lost. Null when the lead does not exist.
 */
export async function recordOutcome(
  kv: KV,
  ref: LeadRef,
  outcome: RecordedOutcome,
): Promise<StoredLead | null> {
  for (let attempt = 1; ; attempt++) {
    const current = await getLead(kv, ref);
    if (current === null) return null;
    const updated: StoredLead = { ...current.lead, outcome };
    try {
      await kv.update(leadKey(ref), encode(updated), current.revision);
      return updated;
    } catch (err) {
      if (!isWrongLastSequence(err) || attempt >= OUTCOME_WRITE_ATTEMPTS) throw err;
    }
  }
}
