import {
  bucketKeySubject,
  decodePlan,
  encodePlan,
  type FollowupPlan,
  type LeadRef,
  leadKey,
} from "@followup/contracts";
import { isWrongLastSequence, publishAtomic, publishHeaders } from "@followup/service-kit";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";

/**
 * The `followup_plans` bucket: one plan per lead, created once and changed only by
 * compare-and-set, so the scored, marker and outcome consumers (in any number of copies) can
 * change one plan at the same time without losing each other's changes.
 */

export interface StoredPlan {
  plan: FollowupPlan;
  revision: number;
}

/** A change to a plan: the new plan, or null when nothing needs to change. */
export type PlanChange = (plan: FollowupPlan) => FollowupPlan | null;

const MAX_CONFLICTS = 20;

export class PlanStore {
  /** `bucket` is the name `kv` was opened with: createAll publishes to its keys' subjects. */
  constructor(
    readonly kv: KV,
    private readonly js: JetStreamClient,
    private readonly bucket: string,
  ) {}

  async get(ref: LeadRef): Promise<StoredPlan | null> {
    const entry = await this.kv.get(leadKey(ref));
    if (entry === null || entry.operation !== "PUT") return null;
    // A stored plan that breaks its contract is a defect an operator must look at: throwing
    // keeps the message coming back (and logged) instead of acting on a plan we cannot read.
    return { plan: decodePlan(entry.json()), revision: entry.revision };
  }

  /** Creates the lead's plan; null when one exists already (somebody else planned first). */
  async create(ref: LeadRef, plan: FollowupPlan): Promise<number | null> {
    try {
      return await this.kv.create(leadKey(ref), encodePlan(plan));
    } catch (err) {
      if (isWrongLastSequence(err)) return null;
      throw err;
    }
  }

  /**
   * Creates the plans of several leads (at most ATOMIC_BATCH_MAX, no lead twice) as one atomic
   * batch: each is what `create` publishes (the key's subject, expected last subject sequence 0),
   * so either all are stored or, when one lead has a plan already, none is and this throws
   * AtomicBatchRejectedError.
   */
  async createAll(plans: readonly { ref: LeadRef; plan: FollowupPlan }[]): Promise<void> {
    await publishAtomic(
      this.js,
      plans.map(({ ref, plan }) => ({
        subject: bucketKeySubject(this.bucket, leadKey(ref)),
        // Bytes, not the string: nats.js would encode it with TextEncoder, 3x Buffer.from's time.
        data: Buffer.from(encodePlan(plan)),
        headers: publishHeaders({ expectLastSubjectSequence: 0 }),
      })),
    );
  }

  /**
   * Applies `change` to the current plan with compare-and-set, re-reading and re-applying it
   * when another writer got there first. Returns the plan as stored afterwards and whether this
   * call changed it; null when the lead has no plan. `known` is a plan this caller read or wrote
   * moments ago: the first compare-and-set starts from it instead of reading the plan again (a
   * round trip saved on the hot paths), and a stale `known` only costs that one failed attempt.
   * A change that declines (null) on `known` is not checked against a fresher plan: pass `known`
   * only where that answer cannot go stale (a step's state only moves on from `pending`).
   */
  async update(
    ref: LeadRef,
    change: PlanChange,
    known?: StoredPlan,
  ): Promise<(StoredPlan & { changed: boolean }) | null> {
    let current = known ?? (await this.get(ref));
    for (let conflicts = 0; ; conflicts++) {
      if (current === null) return null;
      const next = change(current.plan);
      if (next === null) return { ...current, changed: false };
      try {
        const revision = await this.kv.update(leadKey(ref), encodePlan(next), current.revision);
        return { plan: next, revision, changed: true };
      } catch (err) {
        if (!isWrongLastSequence(err) || conflicts >= MAX_CONFLICTS) throw err;
      }
      current = await this.get(ref);
    }
  }
}
