import { createHash } from "node:crypto";

/**
 * Experiments: which variant of a step a lead gets, and whether it is in its sequence's holdout.
 * Both are decided by a hash of tenant, sequence and lead, never by a random draw, so a
 * redelivered lead.scored, a second scheduler copy and a rebuild of the reports all decide the
 * same. The two decisions hash with different salts, so being in the holdout says nothing about
 * the variant a lead would have had.
 */

/** A point in [0, 1) from the first 48 bits of sha256(salt, tenant, sequence, lead). */
export function experimentPoint(salt: string, tenant: string, sequence: string, leadId: string): number {
  // NUL cannot occur in a token or a sequence name, so no two triples hash the same text.
  const digest = createHash("sha256").update(`${salt}\0${tenant}\0${sequence}\0${leadId}`).digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

export interface WeightedVariant {
  name: string;
  weight: number;
}

/**
 * The variant a lead is assigned: each variant's share of the leads is its weight over the sum
 * of the weights (validated sequences have positive integer weights). The variants are taken in
 * the order listed, so reordering a step's variants reassigns leads; renaming one does not.
 */
export function assignVariant<V extends WeightedVariant>(
  tenant: string,
  sequence: string,
  leadId: string,
  variants: readonly V[],
): V {
  if (variants.length === 0) throw new Error("assignVariant needs at least one variant");
  const total = variants.reduce((sum, v) => sum + v.weight, 0);
  if (!(total > 0)) throw new Error("assignVariant needs a positive total weight");
  const target = experimentPoint("variant", tenant, sequence, leadId) * total;
  let cumulative = 0;
  for (const variant of variants) {
    cumulative += variant.weight;
    if (target < cumulative) return variant;
  }
  return variants[variants.length - 1]!;
}

/** Whether a lead is in its sequence's holdout of `pct` percent (0-100; 0: never). */
export function inHoldout(tenant: string, sequence: string, leadId: string, pct: number): boolean {
  if (!(pct > 0)) return false;
  return experimentPoint("holdout", tenant, sequence, leadId) * 100 < pct;
}

/** What a plan records of a lead's experiment: the holdout, and each step's variant and template. */
export interface ExperimentPlan {
  holdout: boolean;
  /** In step order; a step without variants keeps its own template (or none). */
  steps: { variant?: string; template?: string }[];
}

/**
 * The experiment decisions for one enrolment, in one call: what the scheduler puts into the plan
 * (FollowupPlan.holdout, PlannedStep.variant and PlannedStep.template).
 */
export function planExperiment(
  tenant: string,
  sequence: {
    name: string;
    holdout_pct?: number | undefined;
    steps: readonly {
      template?: string | undefined;
      variants?: readonly (WeightedVariant & { template: string })[] | undefined;
    }[];
  },
  leadId: string,
): ExperimentPlan {
  return {
    holdout: inHoldout(tenant, sequence.name, leadId, sequence.holdout_pct ?? 0),
    steps: sequence.steps.map((step) => {
      if (step.variants !== undefined && step.variants.length > 0) {
        const chosen = assignVariant(tenant, sequence.name, leadId, step.variants);
        return { variant: chosen.name, template: chosen.template };
      }
      return step.template === undefined ? {} : { template: step.template };
    }),
  };
}
