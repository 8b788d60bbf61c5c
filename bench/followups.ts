import type { PeerFollowup } from "./peers/hook-call.js";

/**
 * The follow-ups a workload schedules, described once so that every system gets the same ones:
 * the same tenant, lead ids, steps and due times.
 */
export const BENCH_TENANT = "bench";

export function benchLeadId(index: number): string {
  return `L${index.toString(36).padStart(6, "0")}`;
}

export function peerFollowup(leadIndex: number, step: number, delayS: number, dueAtMs: number): PeerFollowup {
  return {
    tenant: BENCH_TENANT,
    lead_id: benchLeadId(leadIndex),
    step,
    delay_s: delayS,
    due_at: new Date(dueAtMs).toISOString(),
  };
}

/** `<tenant>.<leadId>.<step>`: the subject tail and job id every peer uses for one follow-up. */
export function followupTail(followup: PeerFollowup): string {
  return `${followup.tenant}.${followup.lead_id}.${followup.step}`;
}

/** The body a peer stores per follow-up: about what the engine's timer and due messages carry. */
export function followupBody(followup: PeerFollowup): string {
  return JSON.stringify({
    ...followup,
    idempotency_key: `${followup.tenant}:${followup.lead_id}:${followup.step}`,
    channel: "hook",
  });
}
