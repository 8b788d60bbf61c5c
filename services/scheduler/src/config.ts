import { parseSchedules, topology } from "@followup/contracts";
import { ATOMIC_BATCH_MAX, commonEnv, type Env, env, loadConfig } from "@followup/service-kit";
import { z } from "zod";
import { DEFAULT_SCORED_BATCH_SIZE } from "./scheduler.js";

const consumers = topology().consumers;

/**
 * FOLLOWUP_SCHEDULES as delays in seconds, parsed at start-up: a part that does not parse stops
 * the service with a message naming the variable and the part (the system this replaces dropped
 * it silently). An empty variable means the default, as for every variable, so the word `none`
 * is how an operator asks for no follow-ups at all while keeping the engine enabled.
 */
const schedules = z
  .string()
  .default("30m,2h")
  .transform((raw, ctx) => {
    if (raw.trim().toLowerCase() === "none") return [];
    try {
      return parseSchedules(raw);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
      return z.NEVER;
    }
  });

export const schedulerEnv = {
  ...commonEnv,
  FOLLOWUP_ENABLED: env.boolean(true),
  FOLLOWUP_RULE_TOP_P: env.number(0.7, { min: 0, max: 1 }),
  FOLLOWUP_SCHEDULES: schedules,
  FOLLOWUP_QUEUE: env.queue(),
  /** lead.scored and lead.outcome events handled at once, per consumer. */
  SCHEDULER_CONCURRENCY: env.number(64, {
    min: 1,
    // Half of the smaller durable's max_ack_pending, so that two copies both get work.
    max: Math.floor(Math.min(consumers.scored.maxAckPending, consumers.outcomes.maxAckPending) / 2),
    integer: true,
  }),
  /**
   * Most lead.scored events scheduled together: their plans in one atomic batch, their timers in
   * batches of up to 1000. A batch takes what arrived while the previous ones were written, so a
   * lone lead is not held back; 1 schedules every lead alone (SCHEDULER_CONCURRENCY at once).
   * 666: the batches in flight (SCORED_BATCHES_IN_FLIGHT, 3) together fill the durable's
   * max_ack_pending (2000).
   */
  SCHEDULER_BATCH_SIZE: env.number(DEFAULT_SCORED_BATCH_SIZE, {
    min: 1,
    max: ATOMIC_BATCH_MAX,
    integer: true,
  }),
  /** How long SIGTERM waits for handlers in flight before leaving them to redelivery. */
  SCHEDULER_SHUTDOWN_GRACE_MS: env.number(10_000, { min: 0, max: 120_000, integer: true }),
  PORT: env.port(8001),
  HOST: env.string("0.0.0.0"),
};

export type SchedulerConfig = ReturnType<typeof loadSchedulerConfig>;

/** Loads and validates the scheduler's environment; throws ConfigError naming each bad variable. */
export function loadSchedulerConfig(source: Env = process.env) {
  return loadConfig(schedulerEnv, source);
}
