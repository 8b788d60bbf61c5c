import {
  assertStep,
  assertToken,
  DEAD_LETTER_LIMIT_DEFAULT,
  DEAD_LETTER_LIMIT_MAX,
  type DeadLetterItem,
  decodeEvent,
  encodeEvent,
  type FollowupDead,
  makeEvent,
  replayMsgId,
  subjects,
  type Topology,
} from "@followup/contracts";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { readSubject } from "../broker.js";

/**
 * Dead letters (FOLLOWUP_DLQ) listed and replayed for operators. Always scoped to one tenant:
 * the routes that expose this are tenant-scoped by API key, and subjects carry the tenant, so
 * the filter is a subject filter and no other tenant's letters are ever read.
 */

export interface DeadLetterFilter {
  tenant: string;
  leadId?: string;
  step?: number;
  /**
   * At most this many, oldest first; default DEAD_LETTER_LIMIT_DEFAULT, at most
   * DEAD_LETTER_LIMIT_MAX (larger values are clamped).
   */
  limit?: number;
}

const REPLAY_SOURCE = "/dead-letter-replay";

/** The subject filter of a dead-letter filter: `followup.dead.<tenant>.<lead|*>.<step|>>`. */
export function deadLetterSubject(filter: Pick<DeadLetterFilter, "tenant" | "leadId" | "step">): string {
  const tenant = assertToken("tenant", filter.tenant);
  if (filter.leadId !== undefined && filter.step !== undefined) {
    return subjects.followupDead(tenant, filter.leadId, filter.step);
  }
  if (filter.leadId !== undefined) return subjects.followupsOfLead("dead", tenant, filter.leadId);
  if (filter.step !== undefined) return `followup.dead.${tenant}.*.${assertStep(filter.step)}`;
  return subjects.followupsOfTenant("dead", tenant);
}

function limitOf(filter: DeadLetterFilter): number {
  const limit = filter.limit ?? DEAD_LETTER_LIMIT_DEFAULT;
  if (!Number.isFinite(limit)) return DEAD_LETTER_LIMIT_DEFAULT;
  return Math.min(DEAD_LETTER_LIMIT_MAX, Math.max(1, Math.floor(limit)));
}

/**
 * The tenant's dead letters matching the filter, oldest first, at most `limit`. Read with one
 * batched direct get (no consumer is created). A letter that does not decode is left out: the
 * dispatcher writes them through the contract, so it would be a foreign message.
 */
export async function listDeadLetters(
  nc: NatsConnection,
  topo: Topology,
  filter: DeadLetterFilter,
): Promise<DeadLetterItem[]> {
  const limit = limitOf(filter);
  const jsm = await jetstreamManager(nc);
  const stored = await readSubject(jsm, topo.streams.dead.name, deadLetterSubject(filter), limit);
  const items: DeadLetterItem[] = [];
  for (const message of stored) {
    let event: FollowupDead;
    try {
      event = decodeEvent("followup.dead.v1", message.data);
    } catch {
      continue;
    }
    if (event.tenant !== filter.tenant) continue;
    items.push({
      seq: message.seq,
      subject: message.subject,
      received_at: new Date(message.timestamp).toISOString(),
      event,
    });
  }
  return items;
}

/**
 * Publishes each matching dead letter's due follow-up again (same idempotency key, `replays` + 1,
 * its attempts numbered on from the letter's) onto the work queue, records the replay on
 * `followup.replayed` (FOLLOWUP_RESULTS, for the lead's timeline), and deletes the dead letter only once that publish is acknowledged: a
 * failure in between leaves the letter in place to replay again, and the work queue's duplicate
 * window (Nats-Msg-Id `<leadId>:<step>:replay:<replays>`) keeps a quick second replay from
 * queueing it twice. Throws on the first letter it cannot replay; those before it are done.
 */
export async function replayDeadLetters(
  nc: NatsConnection,
  topo: Topology,
  filter: DeadLetterFilter,
  options: { source?: string } = {},
): Promise<{ replayed: DeadLetterItem[] }> {
  const letters = await listDeadLetters(nc, topo, filter);
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const replayed: DeadLetterItem[] = [];
  for (const letter of letters) {
    const due = letter.event.data.due;
    const tenant = letter.event.tenant;
    const replays = (due.replays ?? 0) + 1;
    // The letter's attempts are numbered across replays already: the replay goes on from there.
    const attemptsBefore = letter.event.data.attempts;
    const msgID = replayMsgId({ leadId: due.lead_id, step: due.step }, replays);
    const source = options.source ?? REPLAY_SOURCE;
    const subject = `${due.lead_id}/${due.step}`;
    // Both made at once: the replay's time on the timeline is before its first attempt's.
    const time = new Date();
    const event = makeEvent("followup.due.v1", {
      source,
      subject,
      tenant,
      time,
      data: { ...due, replays, attempts_before: attemptsBefore },
    });
    // For the lead's timeline: the replay itself, beside the results of its attempts.
    const record = makeEvent("followup.replayed.v1", {
      source,
      subject,
      tenant,
      time,
      data: {
        lead_id: due.lead_id,
        step: due.step,
        delay_s: due.delay_s,
        due_at: due.due_at,
        idempotency_key: due.idempotency_key,
        channel: due.channel,
        replays,
        attempts_before: attemptsBefore,
      },
    });
    await js.publish(subjects.followupDue(tenant, due.lead_id, due.step), encodeEvent(event), { msgID });
    await js.publish(subjects.followupReplayed(tenant, due.lead_id, due.step), encodeEvent(record), {
      msgID,
    });
    await jsm.streams.deleteMessage(topo.streams.dead.name, letter.seq, false);
    replayed.push(letter);
  }
  return { replayed };
}
