import {
  bucketStream,
  type ModelEvaluation,
  type ModelRecord,
  StoredLead,
  type Topology,
  type TrainingWindow,
  wildcards,
} from "@followup/contracts";
import { readStream } from "@followup/service-kit";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { z } from "zod";
import { ModelRegistry } from "../src/models/index.js";
import { enrich } from "../src/scoring/enrichment.js";
import { leadHour, loadConversionModel, type Scorer } from "../src/scoring/scoring.js";
import {
  evaluatePredictions,
  labelLeads,
  type OutcomeLead,
  promotionGuard,
  type RecordedOutcomeEvent,
  type TimedLead,
  timeSplit,
} from "./outcomes.js";
import { trainOnSplit } from "./training.js";

/**
 * Retraining from what NATS holds: every lead of the `leads` bucket and every lead.outcome event
 * of LEADS, read with batched direct gets (the lead-intake identity's reads; no consumer).
 */

export interface OutcomeTrainingOptions {
  horizonMs: number;
  /** Fewer labelled leads than this: nothing is trained; the answer says how many more. */
  minLabelled: number;
  testFraction: number;
  /** Evaluate and decide, but promote nothing. */
  dryRun: boolean;
  now: Date;
}

export type OutcomeTrainingResult =
  | { status: "too_few"; labelled: number; needed: number; counts: Record<string, number> }
  | {
      status: "promoted" | "refused" | "dry_run";
      version: string;
      evaluation: ModelEvaluation;
      window: TrainingWindow;
      reasons: string[];
      counts: Record<string, number>;
    };

const LeadFields = StoredLead.pick({
  lead_id: true,
  tenant: true,
  created_at: true,
  details: true,
  timezone: true,
});
const OutcomeFields = z.looseObject({
  tenant: z.string(),
  data: z.looseObject({ lead_id: z.string(), outcome: z.string(), recorded_at: z.iso.datetime() }),
});

/** The leads bucket's last value of every key (deleted leads left out). */
async function readLeads(jsm: JetStreamManager, bucket: string): Promise<OutcomeLead[]> {
  const prefix = `$KV.${bucket}.`;
  const byKey = new Map<string, OutcomeLead | null>();
  for await (const message of readStream(jsm, bucketStream(bucket), `${prefix}>`)) {
    const key = message.subject.slice(prefix.length);
    if (message.header?.get("KV-Operation")) {
      byKey.set(key, null);
      continue;
    }
    const parsed = LeadFields.safeParse(message.json());
    if (!parsed.success) continue;
    const lead = parsed.data;
    byKey.set(key, {
      tenant: lead.tenant,
      lead_id: lead.lead_id,
      created_at: lead.created_at,
      details: lead.details,
      hour: leadHour(new Date(lead.created_at), lead.timezone),
    });
  }
  return [...byKey.values()].filter((lead): lead is OutcomeLead => lead !== null);
}

async function readOutcomes(jsm: JetStreamManager, stream: string): Promise<RecordedOutcomeEvent[]> {
  const outcomes: RecordedOutcomeEvent[] = [];
  for await (const message of readStream(jsm, stream, wildcards.leadOutcome)) {
    const parsed = OutcomeFields.safeParse(message.json());
    if (!parsed.success) continue;
    const { tenant, data } = parsed.data;
    outcomes.push({ tenant, lead_id: data.lead_id, outcome: data.outcome, recorded_at: data.recorded_at });
  }
  return outcomes;
}

/** The model lead-intake scores with now: the registry's current one, else the committed one. */
async function currentScorer(registry: ModelRegistry, fallback: Scorer): Promise<Scorer> {
  const { pointer } = await registry.pointer();
  if (pointer.version === null) return fallback;
  const record = await registry.record(pointer.version);
  if (record === null) return fallback;
  const silent = { warn() {}, error() {} };
  const scorer = loadConversionModel(record.model, silent, `models/${pointer.version}`);
  return scorer.source === "model" ? scorer : fallback;
}

const predictWith = (scorer: Scorer, leads: readonly TimedLead[]) =>
  leads.map((lead) =>
    scorer.predict({ enrichment: enrich(lead.details), detailsLength: lead.details.length, hour: lead.hour }),
  );

export async function trainFromOutcomes(
  deps: { jsm: JetStreamManager; models: KV; topology: Topology; fallback: Scorer },
  options: OutcomeTrainingOptions,
): Promise<OutcomeTrainingResult> {
  const leads = await readLeads(deps.jsm, deps.topology.buckets.leads.bucket);
  const outcomes = await readOutcomes(deps.jsm, deps.topology.streams.leads.name);
  const { leads: labelled, counts } = labelLeads(leads, outcomes, options.now, options.horizonMs);
  if (labelled.length < options.minLabelled || counts.positive === 0 || counts.negative === 0) {
    return {
      status: "too_few",
      labelled: labelled.length,
      needed: Math.max(0, options.minLabelled - labelled.length),
      counts,
    };
  }
  const { train, test } = timeSplit(labelled, options.testFraction);
  const trained = trainOnSplit(train, test, {}, { generator: "outcomes", seed: 0, n: labelled.length });
  const registry = new ModelRegistry(deps.models);
  const current = await currentScorer(registry, deps.fallback);
  const yTest = test.map((lead) => lead.converted);
  const fresh = evaluatePredictions(trained.heldOut.p, yTest);
  const currentAuc = evaluatePredictions(predictWith(current, test), yTest).auc;
  const evaluation: ModelEvaluation = {
    ...fresh,
    n_train: train.length,
    n_test: test.length,
    current_auc: currentAuc,
    current_version: current.version,
  };
  const window: TrainingWindow = {
    train_from: train[0]!.created_at,
    train_until: train[train.length - 1]!.created_at,
    test_from: test[0]!.created_at,
    test_until: test[test.length - 1]!.created_at,
    horizon_ms: options.horizonMs,
  };
  const decision = promotionGuard(fresh.auc, currentAuc);
  const version = trained.model.version;
  const base = { version, evaluation, window, reasons: decision.reasons, counts };
  if (!decision.promote) return { status: "refused", ...base };
  if (options.dryRun) return { status: "dry_run", ...base };
  const record: ModelRecord = {
    version,
    model: { ...trained.model, metrics: { ...trained.model.metrics, auc: fresh.auc } },
    evaluation,
    window,
    promoted_at: options.now.toISOString(),
  };
  await registry.promote(record, options.now);
  return { status: "promoted", ...base };
}
