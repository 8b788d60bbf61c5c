import { commonEnv, type Env, env, loadConfig } from "@followup/service-kit";

const DAY_MS = 24 * 60 * 60 * 1000;

export const reportsEnv = {
  ...commonEnv,
  /** `key:tenant,...`: the same keys as lead-intake's; each sees its tenant's reports only. */
  API_KEYS: env.apiKeys(),
  /** The work queue's name, as the other services have it: the topology names its stream after it. */
  FOLLOWUP_QUEUE: env.queue(),
  PORT: env.port(8003),
  HOST: env.string("0.0.0.0"),
  /**
   * The attribution window in days: a booking within it of the lead's creation is a conversion,
   * and a lead without an outcome is "inside the window" until it ends. The same H as
   * train:outcomes' --horizon; changing it needs a rebuild (counts are made when events arrive).
   */
  ATTRIBUTION_WINDOW_DAYS: env.number(14, { min: 1 / 86_400, max: 365 }),
  /** Most events read into the projection per atomic write (each lead touches up to three keys). */
  REPORTS_BATCH_SIZE: env.number(200, { min: 1, max: 300, integer: true }),
};

export type ReportsConfig = ReturnType<typeof loadReportsConfig>;

export function loadReportsConfig(source: Env = process.env) {
  return loadConfig(reportsEnv, source);
}

export function attributionWindowMs(config: Pick<ReportsConfig, "ATTRIBUTION_WINDOW_DAYS">): number {
  return Math.round(config.ATTRIBUTION_WINDOW_DAYS * DAY_MS);
}
