import { FollowupPlan, Token } from "@followup/contracts";
import { z } from "zod";
import type { ProjectionEvent } from "./projection.js";

/**
 * What the projection reads of each message, and nothing more: a field it does not read cannot
 * make a message unreadable to it (a result kind added later, such as `suppressed`, is counted
 * by name rather than refused).
 */

const Scored = z
  .looseObject({
    tenant: Token,
    data: z.looseObject({ lead_id: Token, created_at: z.iso.datetime(), model_version: z.string() }),
  })
  .transform(
    ({ tenant, data }): ProjectionEvent => ({
      kind: "scored",
      tenant,
      lead_id: data.lead_id,
      created_at: data.created_at,
      model_version: data.model_version,
    }),
  );
const Outcome = z
  .looseObject({
    tenant: Token,
    data: z.looseObject({ lead_id: Token, outcome: z.string().min(1), recorded_at: z.iso.datetime() }),
  })
  .transform(
    ({ tenant, data }): ProjectionEvent => ({
      kind: "outcome",
      tenant,
      lead_id: data.lead_id,
      outcome: data.outcome,
      at: data.recorded_at,
    }),
  );
const Result = z
  .looseObject({
    tenant: Token,
    time: z.iso.datetime(),
    data: z.looseObject({
      lead_id: Token,
      step: z.number().int().min(1),
      channel: z.string().min(1).max(64),
      result: z.string().min(1).max(32),
    }),
  })
  .transform(
    ({ tenant, time, data }): ProjectionEvent => ({
      kind: "result",
      tenant,
      lead_id: data.lead_id,
      step: data.step,
      channel: data.channel,
      result: data.result,
      at: time,
    }),
  );
const Plan = FollowupPlan.transform(
  (plan): ProjectionEvent => ({ kind: "plan", tenant: plan.tenant, lead_id: plan.lead_id, plan }),
);

/** Which schema reads a message, by the start of its subject. */
const SOURCES = [
  ["lead.scored.", Scored, "lead.scored"],
  ["lead.outcome.", Outcome, "lead.outcome"],
  ["followup.result.", Result, "followup.result"],
  ["$KV.followup_plans.", Plan, "followup plan"],
] as const;

export class InvalidMessageError extends Error {
  override name = "InvalidMessageError";
}

function parse<S extends z.ZodType>(schema: S, what: string, data: Uint8Array): z.infer<S> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(data));
  } catch {
    throw new InvalidMessageError(`${what}: body is not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new InvalidMessageError(
      `${what}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"} ${i.message}`).join("; ")}`,
    );
  }
  return parsed.data;
}

/** The projection event of a stored message, by its subject; null for what it ignores (a plan's deletion). */
export function projectionEvent(
  subject: string,
  data: Uint8Array,
  kvOperation: string | undefined,
): ProjectionEvent | null {
  // A KV delete or purge of a plan: nothing to count.
  if (kvOperation !== undefined && kvOperation !== "" && kvOperation !== "PUT") return null;
  const source = SOURCES.find(([prefix]) => subject.startsWith(prefix));
  return source === undefined ? null : parse(source[1], source[2], data);
}
