import { FollowupPlan, Token } from "@followup/contracts";
import { z } from "zod";
import type { ProjectionEvent } from "./projection.js";

/**
 * What the projection reads of each message, and nothing more: a field it does not read cannot
 * make a message unreadable to it (a result kind added later, such as `suppressed`, is counted
 * by name rather than refused).
 */

const Scored = z.looseObject({
  tenant: Token,
  data: z.looseObject({ lead_id: Token, created_at: z.iso.datetime(), model_version: z.string() }),
});
const Outcome = z.looseObject({
  tenant: Token,
  data: z.looseObject({ lead_id: Token, outcome: z.string().min(1), recorded_at: z.iso.datetime() }),
});
const Result = z.looseObject({
  tenant: Token,
  time: z.iso.datetime(),
  data: z.looseObject({
    lead_id: Token,
    step: z.number().int().min(1),
    channel: z.string().min(1).max(64),
    result: z.string().min(1).max(32),
  }),
});

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
  if (subject.startsWith("lead.scored.")) {
    const e = parse(Scored, "lead.scored", data);
    return {
      kind: "scored",
      tenant: e.tenant,
      lead_id: e.data.lead_id,
      created_at: e.data.created_at,
      model_version: e.data.model_version,
    };
  }
  if (subject.startsWith("lead.outcome.")) {
    const e = parse(Outcome, "lead.outcome", data);
    return {
      kind: "outcome",
      tenant: e.tenant,
      lead_id: e.data.lead_id,
      outcome: e.data.outcome,
      at: e.data.recorded_at,
    };
  }
  if (subject.startsWith("followup.result.")) {
    const e = parse(Result, "followup.result", data);
    return {
      kind: "result",
      tenant: e.tenant,
      lead_id: e.data.lead_id,
      step: e.data.step,
      channel: e.data.channel,
      result: e.data.result,
      at: e.time,
    };
  }
  if (subject.startsWith("$KV.followup_plans.")) {
    if (kvOperation !== undefined && kvOperation !== "" && kvOperation !== "PUT") return null;
    const plan = parse(FollowupPlan, "followup plan", data);
    return { kind: "plan", tenant: plan.tenant, lead_id: plan.lead_id, plan };
  }
  return null;
}
