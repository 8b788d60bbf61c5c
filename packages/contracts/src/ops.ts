import { z } from "zod";
import { queryIntegerUpTo } from "./api.js";
import { Token } from "./lead.js";

/**
 * What an operator's page reads besides the resources themselves: who a key is, the follow-ups
 * about to fire and the tenant's numbers at a glance. Every one is the caller's tenant's only.
 */

/** `GET /v1/caller`: who the x-api-key authenticates (the console signs in with it). */
export const CallerView = z
  .object({ tenant: Token })
  .meta({ id: "CallerView", description: "data of the response to GET /v1/caller" });
export type CallerView = z.infer<typeof CallerView>;

/** At most this many upcoming follow-ups a listing answers. */
export const UPCOMING_LIMIT_MAX = 500;
export const UPCOMING_LIMIT_DEFAULT = 50;

/** `GET /ops/followups/upcoming?limit=&lead_id=&channel=&sequence=`. */
export const UpcomingQuery = z
  .object({
    lead_id: Token.optional(),
    channel: Token.optional(),
    sequence: Token.optional(),
    /** Default UPCOMING_LIMIT_DEFAULT. */
    limit: queryIntegerUpTo(UPCOMING_LIMIT_MAX).optional(),
  })
  .meta({ id: "UpcomingQuery", description: "Query of GET /ops/followups/upcoming" });
export type UpcomingQuery = z.infer<typeof UpcomingQuery>;

export const UpcomingFollowup = z.object({
  due_at: z.iso.datetime(),
  lead_id: Token,
  step: z.number().int().min(1),
  /** The sequence the lead was enrolled in; null for a plan made without sequences. */
  sequence: z.string().nullable(),
  /** The step's channel as planned; null when the plan does not name one (the deployment's). */
  channel: z.string().nullable(),
});
export type UpcomingFollowup = z.infer<typeof UpcomingFollowup>;

export const UpcomingFollowups = z
  .object({
    /** Follow-ups of the tenant whose timers are still waiting (before the filters). */
    pending: z.number().int().min(0),
    count: z.number().int().min(0),
    /** The next ones to fire, soonest first, after the filters; at most `limit`. */
    followups: z.array(UpcomingFollowup),
  })
  .meta({ id: "UpcomingFollowups", description: "data of the response to GET /ops/followups/upcoming" });
export type UpcomingFollowups = z.infer<typeof UpcomingFollowups>;

/** Results of one channel over the summary's window. */
export const ChannelResults = z.object({
  /** Attempts that delivered (result ok). */
  delivered: z.number().int().min(0),
  /** Attempts that failed and are retried (result error). */
  retried: z.number().int().min(0),
  /** Follow-ups that failed for good (result dead: a dead letter). */
  failed: z.number().int().min(0),
  /** Attempts stopped because the recipient is suppressed (error `suppressed`). */
  suppressed: z.number().int().min(0),
});
export type ChannelResults = z.infer<typeof ChannelResults>;

/** At most this many results the summary reads back; past it, `results.complete` is false. */
export const SUMMARY_RESULTS_MAX = 20_000;

/** `GET /ops/summary`: the caller's tenant at a glance (the console's overview). */
export const OpsSummary = z
  .object({
    tenant: Token,
    /** Follow-ups whose timers are waiting. */
    pending: z.number().int().min(0),
    /** Of those, the ones due within the next hour. */
    due_next_hour: z.number().int().min(0),
    /** Dead letters not yet replayed (at most 1000 counted). */
    dead_letters: z.number().int().min(0),
    results: z.object({
      /** The window's start: 24 hours before the summary. */
      since: z.iso.datetime(),
      by_channel: z.record(z.string(), ChannelResults),
      /** False when more than SUMMARY_RESULTS_MAX results were stored in the window. */
      complete: z.boolean(),
    }),
  })
  .meta({ id: "OpsSummary", description: "data of the response to GET /ops/summary" });
export type OpsSummary = z.infer<typeof OpsSummary>;
