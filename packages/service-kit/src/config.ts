import { DEFAULT_QUEUE, queueStreamName } from "@followup/contracts";
import { z } from "zod";
import { parseApiKeys } from "./api-keys.js";
import { parseWebhookSecret } from "./webhooks.js";

/**
 * Configuration comes from the environment through a zod schema. A bad value stops
 * start-up with one line per variable: its name, what was expected and what was given.
 */

export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export type Env = Record<string, string | undefined>;

/** Parses `env` with `shape` (one key per variable); throws ConfigError naming every bad variable. */
export function loadConfig<S extends z.ZodRawShape>(
  shape: S,
  env: Env = process.env,
): z.infer<z.ZodObject<S>> {
  // Empty strings mean "unset", as in most shells' `VAR= cmd`.
  const present: Record<string, string> = {};
  for (const key of Object.keys(shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== "") present[key] = value;
  }
  const result = z.object(shape).safeParse(present);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const variable = String(issue.path[0] ?? "(environment)");
      const given = present[variable];
      const shown =
        given === undefined ? "it is not set" : `got ${JSON.stringify(maybeSecret(variable, given))}`;
      return { variable, message: `${issue.message}; ${shown}` };
    }),
  );
}

function maybeSecret(variable: string, value: string): string {
  return /SECRET|PASSWORD|TOKEN|KEYS?$/i.test(variable) ? "<redacted>" : value;
}

/** Variables read as text and turned into typed values, with messages that say what was expected. */
export const env = {
  string: (fallback?: string) => (fallback === undefined ? z.string() : z.string().default(fallback)),

  boolean: (fallback: boolean) =>
    z
      .string()
      .trim()
      .toLowerCase()
      .refine((v) => ["true", "false", "1", "0", "yes", "no", "on", "off"].includes(v), {
        message: "expected true or false (also 1/0, yes/no, on/off)",
      })
      .transform((v) => ["true", "1", "yes", "on"].includes(v))
      .default(fallback),

  number: (fallback: number, opts: { min?: number; max?: number; integer?: boolean } = {}) => {
    const { min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY, integer = false } = opts;
    const what = `${integer ? "an integer" : "a number"}${describeRange(min, max)}`;
    return z
      .string()
      .trim()
      .refine(
        (v) => {
          const n = Number(v);
          return v !== "" && Number.isFinite(n) && n >= min && n <= max && (!integer || Number.isInteger(n));
        },
        { message: `expected ${what}` },
      )
      .transform(Number)
      .default(fallback);
  },

  port: (fallback: number) => env.number(fallback, { min: 0, max: 65535, integer: true }),

  /** A URL with one of the given schemes. */
  url: (fallback: string | undefined, schemes: string[]) => {
    const base = z
      .string()
      .trim()
      .refine(
        (v) => {
          try {
            return schemes.includes(new URL(v).protocol.replace(/:$/, ""));
          } catch {
            return false;
          }
        },
        { message: `expected a URL starting with ${schemes.map((s) => `${s}://`).join(" or ")}` },
      );
    return fallback === undefined ? base : base.default(fallback);
  },

  /** FOLLOWUP_QUEUE: the work queue's name, from which its stream's name is made. */
  queue: () =>
    z
      .string()
      .trim()
      .refine(
        (queue) => {
          try {
            queueStreamName(queue);
            return true;
          } catch {
            return false;
          }
        },
        { message: "expected 1-32 characters of A-Z, a-z, 0-9, '_' or '-'" },
      )
      .default(DEFAULT_QUEUE),

  /** A Standard Webhooks secret (`whsec_` + base64 of at least 24 bytes), decoded into its key. */
  webhookSecret: () =>
    z
      .string()
      .trim()
      .transform((value, ctx) => {
        try {
          return parseWebhookSecret(value);
        } catch (err) {
          ctx.addIssue({ code: "custom", message: (err as Error).message });
          return z.NEVER;
        }
      }),

  /** API_KEYS: `key:tenant,...`, at least one pair; problems name a pair by position, never its key. */
  apiKeys: () =>
    z
      .string()
      .transform((raw, ctx) => {
        const { entries, problems } = parseApiKeys(raw);
        for (const problem of problems) ctx.addIssue({ code: "custom", message: problem });
        return entries;
      })
      .refine((entries) => entries.length > 0, { message: "expected at least one key:tenant pair" }),

  /** One of a fixed set of words. */
  oneOf: <const T extends readonly [string, ...string[]]>(values: T, fallback: T[number]) =>
    z
      .string()
      .trim()
      .pipe(z.enum(values, { error: `expected one of ${values.join(", ")}` }))
      .default(fallback as never),
};

function describeRange(min: number, max: number): string {
  if (Number.isFinite(min) && Number.isFinite(max)) return ` from ${min} to ${max}`;
  if (Number.isFinite(min)) return ` of at least ${min}`;
  if (Number.isFinite(max)) return ` of at most ${max}`;
  return "";
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/**
 * The limits of every service's HTTP server (see http-edge.ts): a client that sends its request
 * slowly is cut off, and a kept-alive connection is closed when idle or after so many requests.
 */
export const httpEnv = {
  /** The request line and headers must arrive within this; the same for a new connection's first byte. */
  HTTP_HEADERS_TIMEOUT_MS: env.number(10_000, { min: 100, max: 600_000, integer: true }),
  /** The whole request, body included, must arrive within this (at least HTTP_HEADERS_TIMEOUT_MS). */
  HTTP_REQUEST_TIMEOUT_MS: env.number(30_000, { min: 100, max: 600_000, integer: true }),
  /** A kept-alive connection idle this long is closed; keep it above a load balancer's idle timeout. */
  HTTP_KEEPALIVE_TIMEOUT_MS: env.number(72_000, { min: 100, max: 600_000, integer: true }),
  /** After this many requests a connection is closed (its last response says `connection: close`); 0: no limit. */
  HTTP_MAX_REQUESTS_PER_SOCKET: env.number(1000, { min: 0, max: 1_000_000, integer: true }),
};
export type HttpLimits = z.infer<z.ZodObject<typeof httpEnv>>;

/** What every service reads: how to reach NATS, how to log, how many replicas its streams get, its HTTP limits. */
export const commonEnv = {
  NATS_URL: env.string("nats://127.0.0.1:4222"),
  NATS_CREDS: z.string().optional(),
  NATS_USER: z.string().optional(),
  NATS_PASSWORD: z.string().optional(),
  NATS_TOKEN: z.string().optional(),
  NATS_TLS_CA: z.string().optional(),
  NATS_TLS_CERT: z.string().optional(),
  NATS_TLS_KEY: z.string().optional(),
  /** The broker identity's inbox prefix (`_INBOX.<identity>`, see permissionsFor in contracts). */
  NATS_INBOX_PREFIX: z
    .string()
    .trim()
    .regex(/^[^\s*>]+$/, { message: "expected a subject prefix without spaces or wildcards" })
    .optional(),
  /**
   * true: provision the whole topology at start (an unrestricted connection). false: only check
   * that what this service uses exists (a service identity; run `pnpm provision` first).
   */
  NATS_PROVISION: env.boolean(true),
  NATS_REPLICAS: env.number(1, { min: 1, max: 5, integer: true }),
  LOG_LEVEL: env.oneOf(LOG_LEVELS, "info"),
  ...httpEnv,
};
