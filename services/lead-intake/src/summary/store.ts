import {
  type ChannelResults,
  DEAD_LETTER_LIMIT_MAX,
  decodeEvent,
  type OpsSummary,
  SUMMARY_RESULTS_MAX,
  subjects,
} from "@followup/contracts";
import { type BrokerHandles, readSubjectPages } from "../broker.js";
import { listDeadLetters } from "../dead-letters/index.js";
import { pendingTimers } from "../upcoming/index.js";

const HOUR_MS = 60 * 60 * 1000;
const WINDOW_MS = 24 * HOUR_MS;

/** What an error of a result says when the dispatcher found the recipient suppressed. */
const SUPPRESSED = "suppressed";

/**
 * The tenant at a glance: its waiting follow-ups and those due within the hour (its timers), its
 * dead letters, and the last 24 hours of results by channel, read back from FOLLOWUP_RESULTS by
 * time (page by page, at most SUMMARY_RESULTS_MAX).
 */
export async function tenantSummary(handles: BrokerHandles, tenant: string, now: Date): Promise<OpsSummary> {
  const since = new Date(now.getTime() - WINDOW_MS);
  const soon = new Date(now.getTime() + HOUR_MS).toISOString();
  const [timers, dead, results] = await Promise.all([
    pendingTimers(handles, tenant),
    listDeadLetters(handles.nc, handles.topology, { tenant, limit: DEAD_LETTER_LIMIT_MAX }),
    readSubjectPages(handles.jsm, handles.topology.streams.results.name, {
      subject: subjects.followupsOfTenant("result", tenant),
      since,
      max: SUMMARY_RESULTS_MAX,
    }),
  ]);
  const byChannel: Record<string, ChannelResults> = {};
  for (const message of results.messages) {
    let data: ReturnType<typeof decodeEvent<"followup.result.v1">>["data"];
    try {
      data = decodeEvent("followup.result.v1", message.data).data;
    } catch {
      continue;
    }
    const counts = byChannel[data.channel] ?? { delivered: 0, retried: 0, failed: 0, suppressed: 0 };
    byChannel[data.channel] = counts;
    if (data.result === "ok") counts.delivered += 1;
    else if (data.error === SUPPRESSED) counts.suppressed += 1;
    else if (data.result === "dead") counts.failed += 1;
    else counts.retried += 1;
  }
  return {
    tenant,
    pending: timers.length,
    due_next_hour: timers.filter((t) => t.dueAt <= soon).length,
    dead_letters: dead.length,
    results: { since: since.toISOString(), by_channel: byChannel, complete: !results.more },
  };
}
