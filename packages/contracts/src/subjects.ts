/**
 * Subject builders and parsers. Every subject carries tenant and lead (and step for
 * follow-ups) so an operator can tail exactly what they want: `nats sub 'followup.*.acme.>'`.
 *
 * Tokens are stricter than NATS requires: besides `.`, `*`, `>` and whitespace, anything
 * outside [A-Za-z0-9_-] is refused, so the same token is also a valid KV key part and
 * never needs escaping in logs, URLs or file names.
 */

export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Steps are numbered from 1, in the order of FOLLOWUP_SCHEDULES. */
export const MAX_STEP = 1000;

export class SubjectError extends Error {
  constructor(
    readonly field: "tenant" | "lead_id" | "step" | "subject",
    message: string,
  ) {
    super(message);
    this.name = "SubjectError";
  }
}

export function isValidToken(value: unknown): value is string {
  return typeof value === "string" && TOKEN_PATTERN.test(value);
}

export function assertToken(field: "tenant" | "lead_id", value: unknown): string {
  if (!isValidToken(value)) {
    throw new SubjectError(
      field,
      `${field} must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-' (got ${JSON.stringify(value)})`,
    );
  }
  return value;
}

export function assertStep(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_STEP) {
    throw new SubjectError(
      "step",
      `step must be an integer from 1 to ${MAX_STEP} (got ${JSON.stringify(value)})`,
    );
  }
  return value;
}

/** The kinds of subject the engine publishes, by their first two tokens. */
export const LEAD_KINDS = ["scored", "outcome"] as const;
export const FOLLOWUP_KINDS = ["timer", "fired", "due", "result", "dead", "replayed"] as const;
export type LeadKind = (typeof LEAD_KINDS)[number];
export type FollowupKind = (typeof FOLLOWUP_KINDS)[number];

export type LeadRef = { tenant: string; leadId: string };
export type StepRef = LeadRef & { step: number };

export type ParsedSubject =
  | ({ family: "lead"; kind: LeadKind } & LeadRef)
  | ({ family: "followup"; kind: FollowupKind } & StepRef);

function leadSubject(kind: LeadKind, tenant: string, leadId: string): string {
  return `lead.${kind}.${assertToken("tenant", tenant)}.${assertToken("lead_id", leadId)}`;
}

function followupSubject(kind: FollowupKind, tenant: string, leadId: string, step: number): string {
  return `followup.${kind}.${assertToken("tenant", tenant)}.${assertToken("lead_id", leadId)}.${assertStep(step)}`;
}

export const subjects = {
  leadScored: (tenant: string, leadId: string) => leadSubject("scored", tenant, leadId),
  leadOutcome: (tenant: string, leadId: string) => leadSubject("outcome", tenant, leadId),
  followupTimer: (tenant: string, leadId: string, step: number) =>
    followupSubject("timer", tenant, leadId, step),
  followupFired: (tenant: string, leadId: string, step: number) =>
    followupSubject("fired", tenant, leadId, step),
  followupDue: (tenant: string, leadId: string, step: number) => followupSubject("due", tenant, leadId, step),
  followupResult: (tenant: string, leadId: string, step: number) =>
    followupSubject("result", tenant, leadId, step),
  followupDead: (tenant: string, leadId: string, step: number) =>
    followupSubject("dead", tenant, leadId, step),
  followupReplayed: (tenant: string, leadId: string, step: number) =>
    followupSubject("replayed", tenant, leadId, step),

  /** Every step of one lead for a follow-up kind: `followup.timer.acme.L1.>`. */
  followupsOfLead: (kind: FollowupKind, tenant: string, leadId: string) =>
    `followup.${kind}.${assertToken("tenant", tenant)}.${assertToken("lead_id", leadId)}.>`,
  /** Every lead of one tenant for a follow-up kind: `followup.dead.acme.>`. */
  followupsOfTenant: (kind: FollowupKind, tenant: string) =>
    `followup.${kind}.${assertToken("tenant", tenant)}.>`,
  /** Every event of one lead of a lead kind: `lead.*.acme.L1` when kind is omitted. */
  leadEvents: (tenant: string, leadId: string, kind?: LeadKind) =>
    `lead.${kind ?? "*"}.${assertToken("tenant", tenant)}.${assertToken("lead_id", leadId)}`,
} as const;

/** Wildcards of whole families, for stream and consumer filters. */
export const wildcards = {
  leadScored: "lead.scored.>",
  leadOutcome: "lead.outcome.>",
  leads: "lead.>",
  followupTimer: "followup.timer.>",
  followupFired: "followup.fired.>",
  followupDue: "followup.due.>",
  followupResult: "followup.result.>",
  followupDead: "followup.dead.>",
  followupReplayed: "followup.replayed.>",
} as const;

/** Parses a concrete (wildcard-free) subject of the engine; throws SubjectError otherwise. */
export function parseSubject(subject: string): ParsedSubject {
  const parts = subject.split(".");
  const [family, kind, tenant, leadId, step] = parts;
  if (family === "lead" && parts.length === 4 && (LEAD_KINDS as readonly string[]).includes(kind ?? "")) {
    return {
      family,
      kind: kind as LeadKind,
      tenant: assertToken("tenant", tenant),
      leadId: assertToken("lead_id", leadId),
    };
  }
  if (
    family === "followup" &&
    parts.length === 5 &&
    (FOLLOWUP_KINDS as readonly string[]).includes(kind ?? "")
  ) {
    if (!/^[0-9]{1,4}$/.test(step ?? "")) {
      throw new SubjectError("step", `step token must be a decimal integer (got ${JSON.stringify(step)})`);
    }
    return {
      family,
      kind: kind as FollowupKind,
      tenant: assertToken("tenant", tenant),
      leadId: assertToken("lead_id", leadId),
      step: assertStep(Number(step)),
    };
  }
  throw new SubjectError("subject", `not a subject of this engine: ${JSON.stringify(subject)}`);
}

/** Parses a follow-up subject of the given kind, e.g. a timer subject seen by the marker consumer. */
export function parseFollowupSubject(subject: string, kind: FollowupKind): StepRef {
  const parsed = parseSubject(subject);
  if (parsed.family !== "followup" || parsed.kind !== kind) {
    throw new SubjectError("subject", `expected a followup.${kind} subject, got ${JSON.stringify(subject)}`);
  }
  return { tenant: parsed.tenant, leadId: parsed.leadId, step: parsed.step };
}

/** Parses a lead subject of the given kind. */
export function parseLeadSubject(subject: string, kind: LeadKind): LeadRef {
  const parsed = parseSubject(subject);
  if (parsed.family !== "lead" || parsed.kind !== kind) {
    throw new SubjectError("subject", `expected a lead.${kind} subject, got ${JSON.stringify(subject)}`);
  }
  return { tenant: parsed.tenant, leadId: parsed.leadId };
}

/** The idempotency key of a follow-up, the same on every attempt and channel: `<tenant>:<leadId>:<step>`. */
export function idempotencyKey(ref: StepRef): string {
  return `${assertToken("tenant", ref.tenant)}:${assertToken("lead_id", ref.leadId)}:${assertStep(ref.step)}`;
}

/** Parses an idempotency key back into its parts; null when it is not one. */
export function parseIdempotencyKey(key: string): StepRef | null {
  const parts = key.split(":");
  if (parts.length !== 3) return null;
  const [tenant, leadId, step] = parts;
  if (!isValidToken(tenant) || !isValidToken(leadId) || !/^[0-9]{1,4}$/.test(step ?? "")) return null;
  const n = Number(step);
  if (n < 1 || n > MAX_STEP) return null;
  return { tenant, leadId, step: n };
}

/**
 * The Nats-Msg-Ids of a follow-up's messages, built here only. Each names what may be stored
 * once within its stream's duplicate window, so a publish repeated after a crash is dropped.
 */
type MsgIdRef = Pick<StepRef, "leadId" | "step">;

/** A follow-up's timer and due message: `<leadId>:<step>`, so a redelivery publishes neither twice. */
export function followupMsgId(ref: MsgIdRef): string {
  return `${assertToken("lead_id", ref.leadId)}:${assertStep(ref.step)}`;
}

/** One delivery attempt's result, per replay and attempt (a crash or a hand-back is a new attempt). */
export function resultMsgId(ref: MsgIdRef, replays: number, attempt: number): string {
  return `${followupMsgId(ref)}:result:${replays}:${attempt}`;
}

/** A follow-up's dead letter: one per replay. */
export function deadLetterMsgId(ref: MsgIdRef, replays: number): string {
  return `${followupMsgId(ref)}:dead:${replays}`;
}

/** A dead letter's due follow-up published again by its `replays`-th replay. */
export function replayMsgId(ref: MsgIdRef, replays: number): string {
  return `${followupMsgId(ref)}:replay:${replays}`;
}

/** The key of a lead in the `leads` KV bucket (and of its follow-up plan): `<tenant>.<leadId>`. */
export function leadKey(ref: LeadRef): string {
  return `${assertToken("tenant", ref.tenant)}.${assertToken("lead_id", ref.leadId)}`;
}
