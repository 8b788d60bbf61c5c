import {
  type LeadRef,
  LeadStopState,
  leadKey,
  type StopReason,
  StoredLead,
  stopReason,
} from "@followup/contracts";
import type { z } from "zod";
import type { KvReader } from "./kv-reads.js";

/** A lead read from the `leads` bucket: parsed, not there (never stored, or deleted), or breaking its contract. */
export type LeadRead<T> =
  | { status: "found"; lead: T; revision: number }
  | { status: "absent" }
  | { status: "invalid"; error: string };

/**
 * The one way to read a lead from the `leads` KV bucket (key `<tenant>.<leadId>`). `schema` is
 * what the reader needs of it (the whole StoredLead by default): a reader parses no more than
 * it uses, so a field it does not read cannot make the lead unreadable to it.
 */
export async function readLead<S extends z.ZodType = typeof StoredLead>(
  leads: KvReader,
  ref: LeadRef,
  schema?: S,
): Promise<LeadRead<z.infer<S>>> {
  const entry = await leads.get(leadKey(ref));
  if (entry === null || entry.operation !== "PUT") return { status: "absent" };
  let json: unknown;
  try {
    json = entry.json();
  } catch (err) {
    return { status: "invalid", error: `is not JSON (${(err as Error).message})` };
  }
  const parsed = (schema ?? StoredLead).safeParse(json);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((issue) => issue.path.join(".") || "(root)");
    return { status: "invalid", error: `breaks its contract at ${[...new Set(fields)].join(", ")}` };
  }
  return { status: "found", lead: parsed.data as z.infer<S>, revision: entry.revision };
}

/**
 * What decides whether the lead's follow-ups stop: its outcome and cancellation, null when it is
 * not stored, undefined when it cannot be read (`onInvalid` hears why). For a caller that learns
 * the plan's stop_on only after reading both at once; stopReasonOf then decides.
 */
export async function readStopState(
  leads: KvReader,
  ref: LeadRef,
  onInvalid?: (error: string) => void,
): Promise<LeadStopState | null | undefined> {
  const read = await readLead(leads, ref, LeadStopState);
  if (read.status === "invalid") {
    onInvalid?.(read.error);
    return undefined;
  }
  return read.status === "found" ? read.lead : null;
}

/** contracts' stopReason of a stop state read by readStopState: an unreadable lead does not stop. */
export function stopReasonOf(
  state: LeadStopState | null | undefined,
  stopOn?: readonly string[],
): StopReason | null {
  return state === undefined ? null : stopReason(state, stopOn);
}

/**
 * Why the lead's follow-ups stop now (contracts' stopReason of the stored lead, against the
 * plan's stop_on when given), or null when they go ahead. An unreadable lead does not stop them
 * (only a recorded outcome or cancellation does); `onInvalid` hears about it.
 */
export async function readStopReason(
  leads: KvReader,
  ref: LeadRef,
  onInvalid?: (error: string) => void,
  stopOn?: readonly string[],
): Promise<StopReason | null> {
  return stopReasonOf(await readStopState(leads, ref, onInvalid), stopOn);
}
