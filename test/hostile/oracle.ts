import { HookPayload, isValidToken, LeadRequest, OutcomeRequest } from "@followup/contracts";
import fc from "fast-check";
import { BODY_LIMIT_BYTES } from "./intake.js";

/**
 * What lead-intake must answer to a request, decided from the contracts alone (the zod schemas
 * of packages/contracts), and the arbitraries that feed it hostile input. A property then says:
 * the service answers exactly what the oracle says, never a 5xx, and stores or publishes only
 * what the oracle accepted.
 */

/** What the body parser sees: too large, not JSON (or a forbidden key), or a JSON value. */
export type ParsedBody =
  | { kind: "too_large" }
  | { kind: "invalid_json" }
  | { kind: "empty" }
  | { kind: "json"; value: unknown };

/** secure-json-parse (fastify's JSON parser) refuses `__proto__` keys and `constructor.prototype`. */
export function hasForbiddenKey(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const node = pending.pop();
    if (node === null || typeof node !== "object") continue;
    if (Object.hasOwn(node, "__proto__")) return true;
    const ctor = (node as Record<string, unknown>).constructor;
    if (Object.hasOwn(node, "constructor") && ctor !== null && typeof ctor === "object") {
      if (Object.hasOwn(ctor, "prototype")) return true;
    }
    for (const key of Object.keys(node)) pending.push((node as Record<string, unknown>)[key]);
  }
  return false;
}

export function parseBody(bytes: Uint8Array): ParsedBody {
  if (bytes.length > BODY_LIMIT_BYTES) return { kind: "too_large" };
  if (bytes.length === 0) return { kind: "empty" };
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return { kind: "invalid_json" };
  }
  return hasForbiddenKey(value) ? { kind: "invalid_json" } : { kind: "json", value };
}

function bodyStatus(body: ParsedBody): number | undefined {
  if (body.kind === "too_large") return 413;
  if (body.kind === "invalid_json") return 400;
  return undefined;
}

function jsonOf(body: ParsedBody): unknown {
  return body.kind === "json" ? body.value : undefined;
}

/** POST /v1/lead with a JSON content type: 413, 400, or 200 (NATS is up). */
export function expectedLeadStatus(bytes: Uint8Array): number {
  const body = parseBody(bytes);
  return bodyStatus(body) ?? (LeadRequest.safeParse(jsonOf(body)).success ? 200 : 400);
}

/**
 * POST /v1/lead/:id/outcome: the body is parsed before the handler runs; then an id that is not
 * a token is 404, a bad body 400, a lead the tenant does not have 404.
 */
export function expectedOutcomeStatus(bytes: Uint8Array, id: string, existing: Set<string>): number {
  const body = parseBody(bytes);
  const early = bodyStatus(body);
  if (early !== undefined) return early;
  if (!isValidToken(id)) return 404;
  if (!OutcomeRequest.safeParse(jsonOf(body)).success) return 400;
  return existing.has(id) ? 200 : 404;
}

/** POST /ops/followup-hook, correctly signed: a valid payload naming its tenant is recorded. */
export function expectedHookStatus(bytes: Uint8Array, webhookId: string): number {
  const body = parseBody(bytes);
  const early = bodyStatus(body);
  if (early !== undefined) return early;
  const payload = HookPayload.safeParse(jsonOf(body));
  if (!payload.success || payload.data.tenant === undefined) return 400;
  return webhookId.length > 256 ? 400 : 200;
}

export const utf8 = (text: string) => new TextEncoder().encode(text);

/** Usually the valid value, sometimes the hostile one: so that both sides are exercised. */
function mostly<T, U>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<U>): fc.Arbitrary<T | U> {
  return fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: hostile });
}

/** Strings a caller should not be able to hurt anything with. */
export const nastyString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 60 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ maxLength: 2_100 }),
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "\ud800",
    "\udfff",
    "\u202e\u0645\u0631\u062d\u0628\u0627",
    "e\u0301\u0301\u0301",
    "🙂👩‍👩‍👧‍👦",
    "\uFEFF",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "\u0024{jndi:ldap://127.0.0.1/a}",
    "../../../../etc/passwd",
    "%00%2e%2e",
    "__proto__",
    "constructor",
    "lead.scored.acme.>",
    "*",
    ">",
    "a.b.c",
  ),
);

const validName = fc
  .string({ unit: "grapheme", minLength: 2, maxLength: 60 })
  .filter((s) => s.trim().length >= 2 && s.trim().length <= 200);
const validPhone = fc.stringMatching(/^\+?[0-9][0-9 ().-]{6,20}$/);
const timezone = fc.constantFrom("Europe/Paris", "America/New_York", "UTC", "Asia/Kolkata", "Mars/Olympus");

/** Objects shaped like a lead, each field usually valid, else hostile or of the wrong type, plus stray keys. */
export const leadLike = fc
  .tuple(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record(
          {
            name: mostly(validName, fc.oneof(nastyString, fc.jsonValue({ maxDepth: 2 }))),
            phone: mostly(validPhone, fc.oneof(nastyString, fc.integer())),
            details: mostly(
              fc.string({ unit: "grapheme", maxLength: 200 }),
              fc.oneof(nastyString, fc.integer()),
            ),
            email: mostly(fc.constantFrom("alex@example.com", "a.b+c@sub.example.org"), nastyString),
            timezone: mostly(timezone, nastyString),
          },
          { requiredKeys: ["name", "phone"] },
        ),
      },
      {
        weight: 1,
        arbitrary: fc.record(
          {
            name: fc.oneof(validName, nastyString, fc.jsonValue({ maxDepth: 2 })),
            phone: fc.oneof(validPhone, nastyString, fc.integer()),
            details: fc.oneof(nastyString, fc.integer()),
            email: fc.oneof(fc.emailAddress(), nastyString),
            timezone: fc.oneof(timezone, nastyString),
          },
          { requiredKeys: [] },
        ),
      },
    ),
    fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
  )
  .map(([fields, extra]) => ({ ...extra, ...fields }));

/** Prototype-pollution payloads: `__proto__` and `constructor.prototype` at any depth. */
export const pollution = fc
  .tuple(
    fc.constantFrom(
      '"__proto__":{"email":"polluted@example.com","isAdmin":true}',
      '"constructor":{"prototype":{"email":"polluted@example.com"}}',
      '"__proto__":{"outcome":{"outcome":"booked","recorded_at":"2020-01-01T00:00:00.000Z"}}',
      '"\\u005f_proto__":{"polluted":true}',
    ),
    fc.integer({ min: 0, max: 30 }),
  )
  .map(([poison, depth]) => {
    const lead = '"name":"Alex Rivera","phone":"+1-555-0199"';
    let text = `{${lead},${poison}}`;
    for (let i = 0; i < depth; i++) text = `{"x":${text}}`;
    return text;
  });

/**
 * Deeply nested JSON that fits the body limit, and bodies over it. Generated as a shape and a size
 * (the text is built from them), so a failure reports two numbers, not a megabyte of brackets.
 */
export const deepOrLong = fc.oneof(
  fc.record({ shape: fc.constant("arrays" as const), size: fc.integer({ min: 50, max: 7_000 }) }),
  fc.record({ shape: fc.constant("objects" as const), size: fc.integer({ min: 50, max: 2_500 }) }),
  fc.record({ shape: fc.constant("proto_deep" as const), size: fc.integer({ min: 50, max: 2_000 }) }),
  fc.record({
    shape: fc.constant("oversized" as const),
    size: fc.integer({ min: BODY_LIMIT_BYTES + 1, max: 48_000 }),
  }),
);

export function deepOrLongText({ shape, size }: { shape: string; size: number }): string {
  switch (shape) {
    case "arrays":
      return `{"name":${"[".repeat(size)}${"]".repeat(size)},"phone":"+15550100"}`;
    case "objects":
      return `${'{"a":'.repeat(size)}1${"}".repeat(size)}`;
    case "proto_deep":
      return `${'{"a":'.repeat(size)}{"__proto__":1}${"}".repeat(size)}`;
    default:
      return `{"name":"Alex Rivera","phone":"+15550100","details":"${"x".repeat(size)}"}`;
  }
}

/** A token-shaped lead id, a real one, or anything at all that can stand in a URL path segment. */
export function leadIdArbitrary(existing: string[]) {
  return fc
    .oneof(fc.constantFrom(...existing), fc.uuid(), fc.stringMatching(/^[A-Za-z0-9_-]{1,70}$/), nastyString)
    .filter((id) => id !== "" && id !== "." && id !== ".." && isWellFormed(id));
}

/** Objects shaped like a hook payload (valid, hostile, wrong types). */
export const hookLike = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record(
      {
        lead_id: mostly(fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), nastyString),
        strategy: mostly(fc.constant("1800s"), nastyString),
        message: mostly(fc.constant("Auto follow-up at +1800s"), nastyString),
        ts: mostly(fc.constant("2026-01-01T00:00:00.000Z"), nastyString),
        tenant: mostly(fc.constantFrom("acme", "globex"), nastyString),
        step: mostly(
          fc.integer({ min: 1, max: 1_000 }),
          fc.oneof(fc.integer({ min: -5, max: 0 }), fc.double()),
        ),
        due_at: mostly(fc.constant("2026-01-01T00:30:00.000Z"), nastyString),
        attempt: mostly(
          fc.integer({ min: 1, max: 20 }),
          fc.oneof(fc.integer({ min: -1, max: 0 }), nastyString),
        ),
      },
      { requiredKeys: ["lead_id", "strategy", "message", "ts"] },
    ),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

/** A string without lone surrogates (encodeURIComponent throws on those). */
function isWellFormed(text: string): boolean {
  try {
    encodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}
