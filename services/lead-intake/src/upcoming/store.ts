import {
  decodeEvent,
  type FollowupPlan,
  MARKER_REASON_HEADER,
  subjects,
  UPCOMING_LIMIT_DEFAULT,
  type UpcomingFollowup,
  type UpcomingFollowups,
} from "@followup/contracts";
import { type BrokerHandles, readSubjectPages } from "../broker.js";
import { readPlan, type ViewLog } from "../lead-view/index.js";

/**
 * The tenant's follow-ups still waiting for their time: the timers on FOLLOWUP_TIMERS under
 * `followup.timer.<tenant>.>` that have not expired yet (a subject holds one message, its timer
 * or, once fired, its marker). Read page by page with direct gets, no consumer; at most
 * TIMERS_READ_MAX messages, past which the soonest of those read are what is shown.
 */
export const TIMERS_READ_MAX = 50_000;

/** Plans read to find sequences and channels; a filter that matches little stops here. */
const PLANS_READ_MAX = 2_000;

export interface PendingTimer {
  leadId: string;
  step: number;
  dueAt: string;
}

/** The tenant's pending timers, soonest first. */
export async function pendingTimers(handles: BrokerHandles, tenant: string): Promise<PendingTimer[]> {
  const { messages } = await readSubjectPages(handles.jsm, handles.topology.streams.timers.name, {
    subject: subjects.followupsOfTenant("timer", tenant),
    max: TIMERS_READ_MAX,
  });
  const timers: PendingTimer[] = [];
  for (const message of messages) {
    if (message.header?.get(MARKER_REASON_HEADER) || message.data.length === 0) continue;
    try {
      const { data } = decodeEvent("followup.timer.v1", message.data);
      timers.push({ leadId: data.lead_id, step: data.step, dueAt: data.due_at });
    } catch {
      // A timer that breaks its contract cannot be shown; the dispatcher reports it when it fires.
    }
  }
  return timers.sort((a, b) => (a.dueAt < b.dueAt ? -1 : a.dueAt > b.dueAt ? 1 : a.step - b.step));
}

export interface UpcomingFilter {
  leadId?: string | undefined;
  channel?: string | undefined;
  sequence?: string | undefined;
  limit?: number | undefined;
}

/**
 * The next follow-ups of the tenant to fire, soonest first, with the sequence and channel their
 * lead's plan gives them, filtered; each lead's plan is read once.
 */
export async function upcomingFollowups(
  handles: BrokerHandles,
  tenant: string,
  filter: UpcomingFilter,
  log: ViewLog,
): Promise<UpcomingFollowups> {
  const limit = filter.limit ?? UPCOMING_LIMIT_DEFAULT;
  const timers = await pendingTimers(handles, tenant);
  const plans = new Map<string, FollowupPlan | null>();
  const followups: UpcomingFollowup[] = [];
  for (const timer of timers) {
    if (followups.length === limit || plans.size >= PLANS_READ_MAX) break;
    if (filter.leadId !== undefined && timer.leadId !== filter.leadId) continue;
    if (!plans.has(timer.leadId))
      plans.set(timer.leadId, await readPlan(handles.plans, { tenant, leadId: timer.leadId }, log));
    const plan = plans.get(timer.leadId) ?? null;
    const sequence = plan?.sequence?.name ?? null;
    const channel = plan?.steps.find((s) => s.step === timer.step)?.channel ?? null;
    if (filter.sequence !== undefined && sequence !== filter.sequence) continue;
    if (filter.channel !== undefined && channel !== filter.channel) continue;
    followups.push({ due_at: timer.dueAt, lead_id: timer.leadId, step: timer.step, sequence, channel });
  }
  return { pending: timers.length, count: followups.length, followups };
}
