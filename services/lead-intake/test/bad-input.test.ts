import { ErrorEnvelope } from "@followup/contracts";
import { type NatsServer, startNatsServer } from "@followup/nats-harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACME_KEY, ALEX, GLOBEX_KEY, type Intake, startIntake, streamMessages } from "./fixtures.js";

/**
 * Every kind of bad input gets its documented status and code, over real HTTP, and neither
 * publishes on LEADS nor stores a key in the leads bucket.
 */

let server: NatsServer;
let intake: Intake;
let base: string;
let acmeLead: string;
const BODY_LIMIT = 4096;

beforeAll(async () => {
  server = await startNatsServer();
  intake = await startIntake({ server, env: { BODY_LIMIT_BYTES: String(BODY_LIMIT) } });
  base = await intake.app.listen({ host: "127.0.0.1", port: 0 });
  const created = await fetch(`${base}/v1/lead`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": ACME_KEY },
    body: JSON.stringify(ALEX),
  });
  acmeLead = ((await created.json()) as { data: { lead_id: string } }).data.lead_id;
});

afterAll(async () => {
  await intake?.close();
  await server?.cleanup();
});

const JSON_TYPE = "application/json";
const valid = { name: "Alex Rivera", phone: "+1-555-0199", details: "wants a quote" };
const json = (value: unknown) => JSON.stringify(value);

interface Case {
  name: string;
  method?: "POST" | "GET";
  path?: string | (() => string);
  key?: string | null;
  contentType?: string | null;
  body?: string;
  status: number;
  code: string;
  /** The fields the details must name. */
  paths?: string[];
  message?: RegExp;
}

const cases: Case[] = [
  {
    name: "missing name",
    body: json({ phone: valid.phone }),
    status: 400,
    code: "validation_error",
    paths: ["name"],
  },
  {
    name: "short name",
    body: json({ ...valid, name: "A" }),
    status: 400,
    code: "validation_error",
    paths: ["name"],
  },
  {
    name: "name of only blanks",
    body: json({ ...valid, name: "   " }),
    status: 400,
    code: "validation_error",
    paths: ["name"],
  },
  {
    name: "name over 200 characters",
    body: json({ ...valid, name: "n".repeat(201) }),
    status: 400,
    code: "validation_error",
    paths: ["name"],
  },
  {
    name: "short phone",
    body: json({ ...valid, phone: "555-01" }),
    status: 400,
    code: "validation_error",
    paths: ["phone"],
  },
  {
    name: "phone with letters",
    body: json({ ...valid, phone: "call me maybe" }),
    status: 400,
    code: "validation_error",
    paths: ["phone"],
  },
  {
    name: "details of 2001 characters",
    body: json({ ...valid, details: "d".repeat(2001) }),
    status: 400,
    code: "validation_error",
    paths: ["details"],
    message: /at most 2000/,
  },
  {
    name: "wrong types",
    body: json({ name: 42, phone: 5550199, details: ["x"] }),
    status: 400,
    code: "validation_error",
    paths: ["name", "phone", "details"],
  },
  { name: "a JSON array", body: json([valid]), status: 400, code: "validation_error", paths: ["(root)"] },
  { name: "JSON null", body: "null", status: 400, code: "validation_error", paths: ["(root)"] },
  {
    name: "a JSON string",
    body: json("Alex Rivera"),
    status: 400,
    code: "validation_error",
    paths: ["(root)"],
  },
  {
    name: "nested junk",
    body: json({ name: { first: "Alex" }, phone: { number: valid.phone }, details: { a: [1, { b: 2 }] } }),
    status: 400,
    code: "validation_error",
    paths: ["name", "phone", "details"],
  },
  {
    name: "an invalid e-mail",
    body: json({ ...valid, email: "alex@" }),
    status: 400,
    code: "validation_error",
    paths: ["email"],
  },
  {
    name: "an unknown time zone",
    body: json({ ...valid, timezone: "Mars/Olympus_Mons" }),
    status: 400,
    code: "validation_error",
    paths: ["timezone"],
  },
  {
    name: "a __proto__ key",
    body: `{"name":"Alex Rivera","phone":"+1-555-0199","__proto__":{"isAdmin":true}}`,
    status: 400,
    code: "invalid_json",
    message: /forbidden key/,
  },
  {
    name: "a nested __proto__ key",
    body: `{"name":"Alex Rivera","phone":"+1-555-0199","details":"x","extra":{"__proto__":{"polluted":1}}}`,
    status: 400,
    code: "invalid_json",
  },
  {
    name: "constructor.prototype",
    body: `{"name":"Alex Rivera","phone":"+1-555-0199","constructor":{"prototype":{"polluted":1}}}`,
    status: 400,
    code: "invalid_json",
  },
  { name: "malformed JSON", body: `{"name": "Alex", "phone": `, status: 400, code: "invalid_json" },
  { name: "trailing garbage", body: `${json(valid)} and more`, status: 400, code: "invalid_json" },
  { name: "an empty body", body: "", status: 400, code: "validation_error", paths: ["(root)"] },
  {
    name: "a huge body",
    body: json({ ...valid, details: "d".repeat(BODY_LIMIT) }),
    status: 413,
    code: "payload_too_large",
    message: new RegExp(`${BODY_LIMIT} bytes`),
  },
  {
    name: "a text/plain body",
    contentType: "text/plain",
    body: json(valid),
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "a form body",
    contentType: "application/x-www-form-urlencoded",
    body: "name=Alex+Rivera&phone=5550199",
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "no content type",
    contentType: null,
    body: json(valid),
    status: 415,
    code: "unsupported_media_type",
  },
  { name: "a missing key", key: null, body: json(valid), status: 401, code: "unauthorized" },
  { name: "an unknown key", key: "not-a-key", body: json(valid), status: 401, code: "unauthorized" },
  {
    name: "an unknown key and a broken body",
    key: "not-a-key",
    body: "{",
    status: 401,
    code: "unauthorized",
  },
  {
    name: "an outcome outside the enum",
    path: () => `/v1/lead/${acmeLead}/outcome`,
    body: json({ outcome: "won" }),
    status: 400,
    code: "validation_error",
    paths: ["outcome"],
  },
  {
    name: "an outcome without a body",
    path: () => `/v1/lead/${acmeLead}/outcome`,
    body: "",
    status: 400,
    code: "validation_error",
    paths: ["(root)"],
  },
  {
    name: "notes over 2000 characters",
    path: () => `/v1/lead/${acmeLead}/outcome`,
    body: json({ outcome: "booked", notes: "n".repeat(2001) }),
    status: 400,
    code: "validation_error",
    paths: ["notes"],
  },
  {
    name: "an outcome for another tenant's lead",
    path: () => `/v1/lead/${acmeLead}/outcome`,
    key: GLOBEX_KEY,
    body: json({ outcome: "booked" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "an outcome for a lead id that is not a token",
    path: "/v1/lead/bad.id%20x/outcome",
    body: json({ outcome: "booked" }),
    status: 404,
    code: "not_found",
  },
  {
    name: "reading another tenant's lead",
    method: "GET",
    path: () => `/v1/lead/${acmeLead}`,
    key: GLOBEX_KEY,
    status: 404,
    code: "not_found",
  },
  {
    name: "reading a lead id that is not a token",
    method: "GET",
    path: `/v1/lead/${"x".repeat(65)}`,
    status: 404,
    code: "not_found",
  },
  { name: "an unknown route", method: "GET", path: "/v1/leads", status: 404, code: "not_found" },
];

describe("bad input over real HTTP: documented status and code, nothing published, nothing stored", () => {
  it(`has at least 20 cases (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const jsm = intake.jsm!;
    const leadsBefore = await streamMessages(jsm, "LEADS");
    const keysBefore = await streamMessages(jsm, "KV_leads");
    const headers: Record<string, string> = { "x-request-id": `bad-${c.name.replace(/\W+/g, "-")}` };
    if (c.key !== null) headers["x-api-key"] = c.key ?? ACME_KEY;
    if (c.contentType !== null && c.body !== undefined) headers["content-type"] = c.contentType ?? JSON_TYPE;
    const path = typeof c.path === "function" ? c.path() : (c.path ?? "/v1/lead");
    const res = await fetch(`${base}${path}`, {
      method: c.method ?? "POST",
      headers,
      // Bytes, not a string: fetch would label a string text/plain on its own.
      ...(c.body !== undefined ? { body: new TextEncoder().encode(c.body) } : {}),
    });
    const body = ErrorEnvelope.parse(await res.json());
    expect({ status: res.status, code: body.error.code }).toEqual({ status: c.status, code: c.code });
    expect(body.request_id).toBe(headers["x-request-id"]);
    expect(res.headers.get("x-request-id")).toBe(headers["x-request-id"]);
    if (c.paths) expect(body.error.details?.map((d) => d.path)).toEqual(c.paths);
    if (c.paths) for (const d of body.error.details ?? []) expect(d.message.length).toBeGreaterThan(5);
    if (c.message) expect(body.error.message).toMatch(c.message);
    expect(await streamMessages(jsm, "LEADS")).toBe(leadsBefore);
    expect(await streamMessages(jsm, "KV_leads")).toBe(keysBefore);
  });

  it("never polluted Object.prototype", () => {
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("counted each refused POST /v1/lead by reason", async () => {
    const text = (await intake.app.inject("/metrics")).body;
    for (const reason of [
      "validation_error",
      "invalid_json",
      "payload_too_large",
      "unsupported_media_type",
      "unauthorized",
    ]) {
      expect(text).toMatch(new RegExp(`leads_rejected_total\\{reason="${reason}"[^}]*\\} [1-9]`));
    }
  });
});
