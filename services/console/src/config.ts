import { commonEnv, type Env, env, loadConfig } from "@followup/service-kit";
import { z } from "zod";

/** Where the `/metrics` of the services whose consumer lag the overview shows are (comma list). */
const metricsUrls = z
  .string()
  .default("")
  .transform((raw, ctx) => {
    const urls = raw
      .split(",")
      .map((part) => part.trim())
      .filter((part) => part !== "");
    for (const url of urls) {
      try {
        if (!["http:", "https:"].includes(new URL(url).protocol)) throw new Error("scheme");
      } catch {
        ctx.addIssue({
          code: "custom",
          message: `expected http:// or https:// URLs, got ${JSON.stringify(url)}`,
        });
        return z.NEVER;
      }
    }
    return urls;
  });

export const consoleEnv = {
  ...commonEnv,
  /** The topology's work queue (the console tails no queue; the topology it checks is named by it). */
  FOLLOWUP_QUEUE: env.queue(),
  /** lead-intake's base URL: every page's data comes from its /v1 and /ops routes. */
  LEAD_INTAKE_URL: env.url("http://127.0.0.1:8000", ["http", "https"]),
  /** The reports service's base URL: `/v1/reports/*` goes there, with the caller's key. */
  REPORTS_URL: env.url("http://127.0.0.1:8003", ["http", "https"]),
  /** The scheduler's and dispatcher's /metrics, for the consumer lag on the overview. */
  CONSOLE_METRICS_URLS: metricsUrls,
  /** Live lead streams (server-sent events) open at once; past it a new one is 503. */
  CONSOLE_MAX_STREAMS: env.number(200, { min: 1, max: 10_000, integer: true }),
  /** How long a call to lead-intake may take. */
  CONSOLE_UPSTREAM_TIMEOUT_MS: env.number(10_000, { min: 100, max: 120_000, integer: true }),
  PORT: env.port(8004),
  HOST: env.string("0.0.0.0"),
};

export type ConsoleConfig = ReturnType<typeof loadConsoleConfig>;

/** Loads and validates the console's environment; throws ConfigError naming each bad variable. */
export function loadConsoleConfig(source: Env = process.env) {
  return loadConfig(consoleEnv, source);
}
