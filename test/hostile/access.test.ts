import { createHash } from "node:crypto";
import { ErrorEnvelope } from "@followup/contracts";
import { signWebhook, webhookHeaders } from "@followup/service-kit";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishDeadLetter } from "../support/index.js";
import { ACME_KEY, GLOBEX_KEY, HOOK_KEY, type HostileIntake, startHostileIntake } from "./intake.js";

/**
 * Who may see and change what. Every /v1 and /ops route with no key, with wrong keys (fixed and
 * random ones) and with another tenant's key against a lead it does not own: 401 or 404 (or an
 * empty answer scoped to the caller's own tenant), never the lead's data and never a change to
 * it. And the hook receiver: a replayed call is recorded once; a wrong signature or a timestamp
 * outside the tolerance is refused and records nothing.
 */

let intake: HostileIntake;
let acmeLead: string;
const SECRET_NAME = "Zelda Quartermaine";
const SECRET_PHONE = "+1-555-0142";

async function publishDead(tenant: string, leadId: string, step: number): Promise<void> {
  await publishDeadLetter(intake.nc, tenant, leadId, step);
}

function hookBody(leadId: string, tenant?: string): string {
  return JSON.stringify({
    lead_id: leadId,
    strategy: "60s",
    message: "Auto follow-up at +60s",
    ts: new Date().toISOString(),
    ...(tenant ? { tenant } : {}),
    step: 1,
    attempt: 1,
  });
}

beforeAll(async () => {
  intake = await startHostileIntake();
  const res = await intake.request("POST", "/v1/lead", {
    body: JSON.stringify({ name: SECRET_NAME, phone: SECRET_PHONE, details: "Urgent: book now" }),
    headers: { "content-type": "application/json", "x-api-key": ACME_KEY },
  });
  acmeLead = (res.json as { data: { lead_id: string } }).data.lead_id;
  await publishDead("acme", acmeLead, 1);
});

afterAll(async () => {
  await intake?.close();
});

interface RouteCall {
  name: string;
  method: string;
  path: () => string;
  body?: () => string;
}

const ROUTES: RouteCall[] = [
  {
    name: "POST /v1/lead",
    method: "POST",
    path: () => "/v1/lead",
    body: () => JSON.stringify({ name: "Mallory", phone: "+1-555-0666" }),
  },
  { name: "GET /v1/lead/:id", method: "GET", path: () => `/v1/lead/${acmeLead}` },
  {
    name: "POST /v1/lead/:id/outcome",
    method: "POST",
    path: () => `/v1/lead/${acmeLead}/outcome`,
    body: () => JSON.stringify({ outcome: "booked", notes: "hijacked" }),
  },
  {
    name: "POST /ops/followup-hook",
    method: "POST",
    path: () => "/ops/followup-hook",
    body: () => hookBody(acmeLead, "acme"),
  },
  { name: "GET /ops/followup/queue", method: "GET", path: () => "/ops/followup/queue" },
  { name: "GET /ops/dead-letters", method: "GET", path: () => `/ops/dead-letters?lead_id=${acmeLead}` },
  {
    name: "POST /ops/dead-letters/replay",
    method: "POST",
    path: () => "/ops/dead-letters/replay",
    body: () => JSON.stringify({ lead_id: acmeLead }),
  },
];

const WRONG_KEYS = [
  `${ACME_KEY}x`,
  ACME_KEY.slice(0, -1),
  ACME_KEY.toUpperCase(),
  `${ACME_KEY}\u00a0`,
  "acme",
  `Bearer ${ACME_KEY}`,
  `${ACME_KEY}, ${ACME_KEY}`,
  "x".repeat(8_000),
];

async function call(route: RouteCall, headers: Record<string, string>) {
  const body = route.body?.();
  return intake.request(route.method, route.path(), {
    ...(body !== undefined ? { body } : {}),
    headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
  });
}

/** What must stay true of acme's lead whatever another caller does. */
async function acmeLeadUntouched(): Promise<void> {
  const view = await intake.request("GET", `/v1/lead/${acmeLead}`, { headers: { "x-api-key": ACME_KEY } });
  expect(view.status).toBe(200);
  const data = (view.json as { data: { lead: { outcome?: unknown }; timeline: { event: string }[] } }).data;
  expect(data.lead.outcome).toBeUndefined();
  expect(data.timeline.map((entry) => entry.event)).not.toContain("hook_received");
  const dead = await intake.request("GET", `/ops/dead-letters?lead_id=${acmeLead}`, {
    headers: { "x-api-key": ACME_KEY },
  });
  expect((dead.json as { data: { count: number } }).data.count).toBe(1);
}

function neverData(text: string): void {
  expect(text).not.toContain(SECRET_NAME);
  expect(text).not.toContain(SECRET_PHONE);
}

describe("every /v1 and /ops route", () => {
  it.each(ROUTES.map((route) => [route.name, route] as const))(
    "%s without a key: 401",
    async (_name, route) => {
      const before = await intake.counts();
      const res = await call(route, {});
      expect(res.status).toBe(401);
      expect(["unauthorized", "invalid_signature"]).toContain(ErrorEnvelope.parse(res.json).error.code);
      neverData(res.text);
      expect(await intake.counts()).toEqual(before);
    },
  );

  it.each(ROUTES.map((route) => [route.name, route] as const))(
    "%s with wrong keys: 401",
    async (_name, route) => {
      const before = await intake.counts();
      for (const key of WRONG_KEYS) {
        const res = await call(route, { "x-api-key": key });
        expect(res.status, `key ${key.slice(0, 20)}…`).toBe(401);
        ErrorEnvelope.parse(res.json);
        neverData(res.text);
      }
      expect(await intake.counts()).toEqual(before);
      await acmeLeadUntouched();
    },
  );

  it("refuses random keys on every route (property)", async () => {
    const before = await intake.counts();
    const key = fc
      .stringMatching(/^[!-~][ -~]{0,80}[!-~]$/)
      .filter((k) => k !== ACME_KEY && k !== GLOBEX_KEY);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), key, async (route, apiKey) => {
        const res = await call(route, { "x-api-key": apiKey });
        expect(res.status).toBe(401);
        neverData(res.text);
      }),
      { numRuns: 150 },
    );
    expect(await intake.counts()).toEqual(before);
  });

  it("with another tenant's key, a lead it does not own is not found, not changed, not shown", async () => {
    const before = await intake.counts();
    const globex = { "x-api-key": GLOBEX_KEY };
    const byName = Object.fromEntries(ROUTES.map((route) => [route.name, route]));
    const get = await call(byName["GET /v1/lead/:id"]!, globex);
    expect(get.status).toBe(404);
    expect(ErrorEnvelope.parse(get.json).error.code).toBe("not_found");
    const outcome = await call(byName["POST /v1/lead/:id/outcome"]!, globex);
    expect(outcome.status).toBe(404);
    // Naming acme as the tenant with globex's key is refused.
    const hook = await call(byName["POST /ops/followup-hook"]!, globex);
    expect(hook.status).toBe(400);
    // Dead letters are read and replayed within the caller's tenant only: nothing of acme's.
    const dead = await call(byName["GET /ops/dead-letters"]!, globex);
    expect(dead.status).toBe(200);
    expect(dead.json).toMatchObject({ ok: true, data: { count: 0, dead_letters: [] } });
    const replay = await call(byName["POST /ops/dead-letters/replay"]!, globex);
    expect(replay.status).toBe(200);
    expect(replay.json).toMatchObject({ ok: true, data: { replayed: 0, items: [] } });
    for (const res of [get, outcome, hook, dead, replay]) neverData(res.text);
    expect(await intake.counts()).toEqual(before);
    await acmeLeadUntouched();

    // A hook call with globex's key and no tenant is recorded under globex, not on acme's lead.
    const own = await intake.request("POST", "/ops/followup-hook", {
      body: hookBody(acmeLead),
      headers: { "content-type": "application/json", ...globex },
    });
    expect(own.status).toBe(200);
    await acmeLeadUntouched();
  });

  it("with any key, a lead id of another tenant or none at all answers exactly alike (property)", async () => {
    const id = fc.oneof(fc.uuid(), fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), fc.constant(acmeLead));
    await fc.assert(
      fc.asyncProperty(id, async (leadId) => {
        const res = await intake.request("GET", `/v1/lead/${leadId}`, {
          headers: { "x-api-key": GLOBEX_KEY },
        });
        expect(res.status).toBe(404);
        expect((res.json as ErrorEnvelope).error).toEqual({ code: "not_found", message: "lead not found" });
      }),
      { numRuns: 60 },
    );
  });
});

describe("the hook receiver's signatures", () => {
  let call = 0;
  const nextId = () => `access-${++call}-${Date.now()}`;
  const postHook = (body: string, headers: object) =>
    intake.request("POST", "/ops/followup-hook", {
      body,
      headers: { "content-type": "application/json", ...headers },
    });

  it("records a replayed call (same webhook-id, re-signed or not) once", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 5 }), fc.boolean(), async (times, resign) => {
        const before = await intake.counts();
        const id = nextId();
        const body = hookBody(acmeLead, "acme");
        const first = webhookHeaders(HOOK_KEY, id, body);
        for (let i = 0; i < times; i++) {
          const res = await postHook(body, resign ? webhookHeaders(HOOK_KEY, id, body) : first);
          expect(res.status).toBe(200);
          expect(res.json).toEqual({ ok: true, message: "Follow-up hook received" });
        }
        expect((await intake.counts()).receipts - before.receipts).toBe(1);
      }),
      { numRuns: 15 },
    );
  });

  it("refuses a timestamp outside the 5-minute tolerance, either way, even correctly signed", async () => {
    const before = await intake.counts();
    const offset = fc.integer({ min: 302, max: 10 ** 9 }).chain((n) => fc.constantFrom(n, -n));
    await fc.assert(
      fc.asyncProperty(offset, async (seconds) => {
        const id = nextId();
        const body = hookBody(acmeLead, "acme");
        const timestamp = Math.floor(Date.now() / 1000) + seconds;
        const res = await postHook(body, {
          "webhook-id": id,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": signWebhook(HOOK_KEY, id, timestamp, body),
        });
        expect(res.status).toBe(401);
        expect(ErrorEnvelope.parse(res.json).error.code).toBe("invalid_signature");
      }),
      { numRuns: 40 },
    );
    expect(await intake.counts()).toEqual(before);
  });

  it("refuses any change to a signed call: body, id, timestamp, signature or secret", async () => {
    const before = await intake.counts();
    const tamper = fc.oneof(
      fc.record({ kind: fc.constant("body" as const), at: fc.nat(), to: fc.integer({ min: 32, max: 126 }) }),
      fc.record({ kind: fc.constant("id" as const), suffix: fc.stringMatching(/^[!-~]{1,8}$/) }),
      fc.record({
        kind: fc.constant("timestamp" as const),
        by: fc.integer({ min: -250, max: 250 }).filter((n) => n !== 0),
      }),
      fc.record({ kind: fc.constant("signature" as const), signature: fc.string({ maxLength: 120 }) }),
      fc.record({ kind: fc.constant("secret" as const), seed: fc.string({ minLength: 1, maxLength: 10 }) }),
    );
    await fc.assert(
      fc.asyncProperty(tamper, async (change) => {
        const id = nextId();
        let body = hookBody(acmeLead, "acme");
        const headers: Record<string, string> = { ...webhookHeaders(HOOK_KEY, id, body) };
        if (change.kind === "body") {
          const at = change.at % body.length;
          const replaced = String.fromCharCode(change.to);
          fc.pre(body[at] !== replaced);
          body = body.slice(0, at) + replaced + body.slice(at + 1);
        } else if (change.kind === "id") {
          headers["webhook-id"] = `${id}${change.suffix}`;
        } else if (change.kind === "timestamp") {
          headers["webhook-timestamp"] = String(Number(headers["webhook-timestamp"]) + change.by);
        } else if (change.kind === "signature") {
          headers["webhook-signature"] = `v1,${Buffer.from(change.signature).toString("base64")}`;
        } else {
          const other = createHash("sha256").update(change.seed).digest();
          headers["webhook-signature"] = signWebhook(other, id, Number(headers["webhook-timestamp"]), body);
        }
        const res = await postHook(body, headers);
        // A body broken by the change may fail to parse first (400); it is never accepted.
        expect([400, 401]).toContain(res.status);
        if (change.kind !== "body")
          expect(ErrorEnvelope.parse(res.json).error.code).toBe("invalid_signature");
      }),
      { numRuns: 120 },
    );
    expect(await intake.counts()).toEqual(before);
  });
});
