import { createHash, randomUUID } from "node:crypto";
import { SEQUENCE_EXAMPLE } from "@followup/contracts";
import { type NatsServer, startNatsServer } from "@followup/nats-harness";
import { webhookHeaders } from "@followup/service-kit";
import { modelRecord, publishDeadLetter } from "@followup/system-tests/support";
import { compileErrors, dereference, validate } from "@readme/openapi-parser";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpenApiDocument, Operation } from "../src/api-docs/index.js";
import { renderReference } from "../src/api-docs/index.js";
import { ModelRegistry } from "../src/models/index.js";
import { ACME_KEY, ALEX, GLOBEX_KEY, type Intake, KEY, startIntake } from "./fixtures.js";

/**
 * The OpenAPI document of lead-intake: valid by an independent validator, naming every route
 * fastify serves, and describing what the routes really answer: every response captured below
 * over real HTTP, successes and failures, matches the document's schema for its status.
 */

let server: NatsServer;
let intake: Intake;
/** lead-intake without NATS, for the 503s; its rate limit is 2 a minute, for a 429. */
let offline: Intake;
let base: string;
let offlineBase: string;
let document: OpenApiDocument;
let dereferenced: OpenApiDocument;
const BODY_LIMIT = 4096;

beforeAll(async () => {
  server = await startNatsServer();
  intake = await startIntake({
    server,
    env: {
      BODY_LIMIT_BYTES: String(BODY_LIMIT),
      CHANNEL_SECRETS_KEY: Buffer.alloc(32, 3).toString("base64"),
      MODEL_OPERATOR_TENANTS: "globex",
    },
  });
  offline = await startIntake({ env: { RATE_LIMIT_PER_MINUTE: "2" } });
  base = await intake.app.listen({ host: "127.0.0.1", port: 0 });
  offlineBase = await offline.app.listen({ host: "127.0.0.1", port: 0 });
  const res = await fetch(`${base}/openapi.json`);
  document = (await res.json()) as OpenApiDocument;
  dereferenced = (await dereference(structuredClone(document) as never)) as unknown as OpenApiDocument;
});

afterAll(async () => {
  await intake?.close();
  await offline?.close();
  await server?.cleanup();
});

const METHODS = ["get", "put", "post", "delete", "patch"] as const;

function operations(doc: OpenApiDocument): { method: string; path: string; operation: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((method) => item[method] !== undefined).map((method) => ({
      method,
      path,
      operation: item[method]!,
    })),
  );
}

/**
 * The routes fastify itself serves, read from printRoutes' tree (one segment a line, each
 * indented under its parent), as `METHOD /path/{param}`; HEAD is fastify's own, not documented.
 */
function servedRoutes(tree: string): string[] {
  const prefixes: string[] = [];
  const routes: string[] = [];
  for (const line of tree.split("\n")) {
    const match = /^((?:[│ ] {3})*)[├└]── (\S+) \(([^)]+)\)$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    const path = (prefixes[depth - 1] ?? "") + match[2]!;
    prefixes[depth] = path;
    prefixes.length = depth + 1;
    for (const method of match[3]!.split(", ")) {
      if (method !== "HEAD") routes.push(`${method} ${path.replace(/:(\w+)/g, "{$1}")}`);
    }
  }
  return routes;
}

describe("GET /openapi.json", () => {
  it("is public, JSON, and carries the edge's headers", async () => {
    const res = await fetch(`${base}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("is a valid OpenAPI 3.1 document, by @readme/openapi-parser, and dereferences", async () => {
    expect(document.openapi).toBe("3.1.0");
    const result = await validate(structuredClone(document) as never);
    expect(result.valid, result.valid ? "" : compileErrors(result)).toBe(true);
    expect(result.warnings).toEqual([]);
    expect(JSON.stringify(dereferenced)).not.toContain('"$ref"');
    expect(document.info.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("documents every route fastify serves under /v1 and /ops, and only those it serves", () => {
    const served = servedRoutes(intake.app.printRoutes({ commonPrefix: false }));
    const documented = operations(document).map(({ method, path }) => `${method.toUpperCase()} ${path}`);
    const api = (route: string) => / \/(v1|ops)\//.test(route);
    expect(served.filter(api).length).toBe(33);
    expect(documented.filter(api).sort()).toEqual(served.filter(api).sort());
    expect([...documented].sort()).toEqual([...served].sort());
  });

  it("gives each operation its stable operationId, a summary, a description and a tag", () => {
    const ids = Object.fromEntries(
      operations(document).map(({ method, path, operation }) => [
        `${method.toUpperCase()} ${path}`,
        operation,
      ]),
    );
    const expected: Record<string, string> = {
      "POST /v1/lead": "createLead",
      "GET /v1/lead/{id}": "getLead",
      "POST /v1/lead/{id}/outcome": "recordOutcome",
      "POST /v1/lead/{id}/enroll": "enrolLead",
      "POST /v1/lead/{id}/unenroll": "unenrolLead",
      "POST /ops/followup-hook": "receiveHook",
      "GET /ops/followup/queue": "getQueue",
      "GET /ops/dead-letters": "listDeadLetters",
      "POST /ops/dead-letters/replay": "replayDeadLetters",
      "GET /v1/sequences": "listSequences",
      "GET /v1/sequences/{name}": "getSequence",
      "PUT /v1/sequences/{name}": "putSequence",
      "DELETE /v1/sequences/{name}": "deleteSequence",
      "GET /v1/templates": "listTemplates",
      "GET /v1/templates/{name}": "getTemplate",
      "PUT /v1/templates/{name}": "putTemplate",
      "DELETE /v1/templates/{name}": "deleteTemplate",
      "POST /v1/templates/{name}/preview": "previewTemplate",
      "GET /v1/channels": "listChannels",
      "GET /v1/channels/{channel}": "getChannel",
      "PUT /v1/channels/sms": "putSmsChannel",
      "PUT /v1/channels/email": "putEmailChannel",
      "PUT /v1/channels/slack": "putSlackChannel",
      "PUT /v1/channels/hook": "putHookChannel",
      "DELETE /v1/channels/{channel}": "deleteChannel",
      "GET /v1/suppressions": "listSuppressions",
      "POST /v1/suppressions": "addSuppression",
      "DELETE /v1/suppressions/{id}": "deleteSuppression",
      "GET /u/{token}": "showUnsubscribe",
      "POST /u/{token}": "oneClickUnsubscribe",
      "POST /hooks/twilio/inbound/{tenant}": "receiveTwilioInbound",
      "GET /v1/caller": "getCaller",
      "GET /ops/followups/upcoming": "listUpcomingFollowups",
      "GET /ops/summary": "getSummary",
    };
    for (const [route, operationId] of Object.entries(expected)) {
      expect(ids[route]?.operationId, route).toBe(operationId);
    }
    for (const { method, path, operation } of operations(document)) {
      const route = `${method} ${path}`;
      expect(operation.summary, route).toBeTruthy();
      expect(operation.description, route).toBeTruthy();
      expect(operation.tags?.length, route).toBe(1);
      expect(
        document.tags?.map((tag) => tag.name),
        route,
      ).toContain(operation.tags![0]);
    }
  });

  it("asks for the x-api-key on /v1 and /ops, a signature or the key on the hook, nothing elsewhere", () => {
    expect(document.components?.securitySchemes?.apiKey).toMatchObject({
      type: "apiKey",
      in: "header",
      name: "x-api-key",
    });
    expect(document.components?.securitySchemes?.webhookSignature).toMatchObject({
      type: "apiKey",
      in: "header",
      name: "webhook-signature",
    });
    for (const { method, path, operation } of operations(document)) {
      const route = `${method.toUpperCase()} ${path}`;
      if (route === "POST /ops/followup-hook") {
        expect(operation.security, route).toEqual([{ webhookSignature: [] }, { apiKey: [] }]);
      } else if (/^\/(v1|ops)\//.test(path)) {
        expect(operation.security, route).toEqual([{ apiKey: [] }]);
      } else {
        expect(operation.security, route).toEqual([]);
      }
    }
  });

  it("shows the error envelope on every failure a route declares", () => {
    for (const { method, path, operation } of operations(document)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue;
        expect(response.content?.["application/json"]?.schema, `${method} ${path} ${status}`).toEqual({
          $ref: "#/components/schemas/ErrorEnvelope",
        });
      }
    }
    const envelope = dereferenced.components?.schemas?.ErrorEnvelope as { required?: string[] };
    expect(envelope.required).toEqual(["ok", "error", "request_id"]);
    const replay = document.paths["/ops/dead-letters/replay"]?.post;
    // No body replays them all: the document must not say a body is required.
    expect(replay?.requestBody?.required).toBe(false);
    expect(document.paths["/v1/lead"]?.post?.requestBody?.required).toBe(true);
  });

  it("shows the issue's sequence as the example of a sequence's body", () => {
    const body = dereferenced.paths["/v1/sequences/{name}"]?.put?.requestBody?.content["application/json"]
      ?.schema as { examples?: unknown[] } | undefined;
    expect(body?.examples).toEqual([SEQUENCE_EXAMPLE]);
  });
});

type Method = "GET" | "POST" | "PUT" | "DELETE";

interface Capture {
  method: Method;
  /** The path as the document names it. */
  path: string;
  status: number;
  contentType: string | null;
  body: unknown;
}

const captures: Capture[] = [];

async function call(
  target: string,
  method: Method,
  documented: string,
  url: string,
  init: { headers?: Record<string, string>; body?: string } = {},
): Promise<Capture> {
  const res = await fetch(`${target}${url}`, { method, ...init });
  const text = await res.text();
  const capture: Capture = {
    method,
    path: documented,
    status: res.status,
    contentType: res.headers.get("content-type"),
    body: JSON.parse(text),
  };
  captures.push(capture);
  return capture;
}

const keyed = (key = ACME_KEY) => ({ "content-type": "application/json", "x-api-key": key });

describe("every route, driven once over HTTP, answers what the document says", () => {
  it("captures a success and a typical failure of each route", async () => {
    const lead = await call(base, "POST", "/v1/lead", "/v1/lead", {
      headers: keyed(),
      body: JSON.stringify(ALEX),
    });
    expect(lead.status).toBe(200);
    const leadId = (lead.body as { data: { lead_id: string } }).data.lead_id;
    const statuses = [
      (
        await call(base, "POST", "/v1/lead", "/v1/lead", {
          headers: keyed(),
          body: JSON.stringify({ name: "A", phone: "12" }),
        })
      ).status,
      (await call(base, "POST", "/v1/lead", "/v1/lead", { body: JSON.stringify(ALEX) })).status,
      (
        await call(base, "POST", "/v1/lead", "/v1/lead", {
          headers: keyed(),
          body: JSON.stringify({ ...ALEX, details: "x".repeat(BODY_LIMIT) }),
        })
      ).status,
      (
        await call(base, "POST", "/v1/lead", "/v1/lead", {
          headers: { "content-type": "text/plain", "x-api-key": ACME_KEY },
          body: "hello",
        })
      ).status,
      (await call(base, "GET", "/v1/lead/{id}", `/v1/lead/${leadId}`, { headers: keyed() })).status,
      (await call(base, "GET", "/v1/lead/{id}", `/v1/lead/${leadId}`, { headers: keyed(GLOBEX_KEY) })).status,
      (
        await call(base, "POST", "/v1/lead/{id}/outcome", `/v1/lead/${leadId}/outcome`, {
          headers: keyed(),
          body: JSON.stringify({ outcome: "booked", notes: "deposit paid" }),
        })
      ).status,
      (
        await call(base, "POST", "/v1/lead/{id}/outcome", `/v1/lead/${leadId}/outcome`, {
          headers: keyed(),
          body: JSON.stringify({ outcome: "maybe" }),
        })
      ).status,
      (
        await call(base, "POST", "/v1/lead/{id}/outcome", "/v1/lead/no-such-lead/outcome", {
          headers: keyed(),
          body: JSON.stringify({ outcome: "spam" }),
        })
      ).status,
    ];
    expect(statuses).toEqual([400, 401, 413, 415, 200, 404, 200, 400, 404]);

    const hookBody = JSON.stringify({
      lead_id: leadId,
      strategy: "1800s",
      message: "Hi Alex, still interested?",
      ts: new Date().toISOString(),
      tenant: "acme",
      step: 1,
    });
    const hookStatuses = [
      (
        await call(base, "POST", "/ops/followup-hook", "/ops/followup-hook", {
          headers: {
            "content-type": "application/json",
            ...webhookHeaders(KEY, `msg_${randomUUID()}`, hookBody),
          },
          body: hookBody,
        })
      ).status,
      (
        await call(base, "POST", "/ops/followup-hook", "/ops/followup-hook", {
          headers: keyed(),
          body: JSON.stringify({
            lead_id: leadId,
            strategy: "3600s",
            message: "Hi",
            ts: new Date().toISOString(),
          }),
        })
      ).status,
      (
        await call(base, "POST", "/ops/followup-hook", "/ops/followup-hook", {
          headers: {
            "content-type": "application/json",
            ...webhookHeaders(Buffer.alloc(32, 9), `msg_${randomUUID()}`, hookBody),
          },
          body: hookBody,
        })
      ).status,
      (
        await call(base, "POST", "/ops/followup-hook", "/ops/followup-hook", {
          headers: keyed(),
          body: JSON.stringify({ lead_id: leadId }),
        })
      ).status,
    ];
    expect(hookStatuses).toEqual([200, 200, 401, 400]);

    await publishDeadLetter(intake.nc!, "acme", leadId, 1);
    const opsStatuses = [
      (await call(base, "GET", "/ops/followup/queue", "/ops/followup/queue", { headers: keyed() })).status,
      (await call(base, "GET", "/ops/followup/queue", "/ops/followup/queue")).status,
      (
        await call(base, "GET", "/ops/dead-letters", `/ops/dead-letters?lead_id=${leadId}`, {
          headers: keyed(),
        })
      ).status,
      (await call(base, "GET", "/ops/dead-letters", "/ops/dead-letters?limit=0", { headers: keyed() }))
        .status,
      (
        await call(base, "POST", "/ops/dead-letters/replay", "/ops/dead-letters/replay", {
          headers: keyed(),
          body: JSON.stringify({ lead_id: leadId }),
        })
      ).status,
      // No body at all: every dead letter of the tenant.
      (
        await call(base, "POST", "/ops/dead-letters/replay", "/ops/dead-letters/replay", {
          headers: { "x-api-key": ACME_KEY },
        })
      ).status,
      (
        await call(base, "POST", "/ops/dead-letters/replay", "/ops/dead-letters/replay", {
          headers: keyed(),
          body: JSON.stringify({ step: 0 }),
        })
      ).status,
    ];
    expect(opsStatuses).toEqual([200, 401, 200, 400, 200, 200, 400]);
    const listed = captures.find((c) => c.path === "/ops/dead-letters" && c.status === 200)!;
    expect((listed.body as { data: { count: number } }).data.count).toBe(1);

    // Without NATS: the broker is unavailable (503), and the queue says why (200).
    const offlineStatuses = [
      (
        await call(offlineBase, "POST", "/v1/lead", "/v1/lead", {
          headers: keyed(),
          body: JSON.stringify(ALEX),
        })
      ).status,
      (await call(offlineBase, "GET", "/v1/lead/{id}", `/v1/lead/${leadId}`, { headers: keyed(GLOBEX_KEY) }))
        .status,
      (
        await call(offlineBase, "GET", "/ops/followup/queue", "/ops/followup/queue", {
          headers: keyed(GLOBEX_KEY),
        })
      ).status,
      // The third call of GLOBEX's key in a minute, with a limit of 2.
      (
        await call(offlineBase, "GET", "/ops/followup/queue", "/ops/followup/queue", {
          headers: keyed(GLOBEX_KEY),
        })
      ).status,
    ];
    expect(offlineStatuses).toEqual([503, 503, 200, 429]);
  });

  it("captures the templates routes: created, replaced, read, listed, previewed, deleted, and their failures", async () => {
    const one = "/v1/templates/{name}";
    const url = "/v1/templates/openapi-recap";
    const body = JSON.stringify({
      channel: "email",
      subject: "Hi {{ lead.first_name }}",
      body: "Hi {{ lead.name }}",
      html: "<p>Hi {{ lead.name }}</p>",
    });
    const created = await call(base, "PUT", one, url, { headers: keyed(), body });
    expect(created.status).toBe(201);
    const revision = (created.body as { data: { revision: number } }).data.revision;
    const lead = await call(base, "POST", "/v1/lead", "/v1/lead", {
      headers: keyed(),
      body: JSON.stringify(ALEX),
    });
    const leadId = (lead.body as { data: { lead_id: string } }).data.lead_id;
    const previewPath = "/v1/templates/{name}/preview";
    const statuses = [
      (await call(base, "PUT", one, url, { headers: { ...keyed(), "if-match": `"${revision}"` }, body }))
        .status,
      (await call(base, "PUT", one, url, { headers: { ...keyed(), "if-match": `"${revision}"` }, body }))
        .status,
      (
        await call(base, "PUT", one, url, {
          headers: keyed(),
          body: JSON.stringify({ channel: "sms", body: "Hi {{ lead.nmae }}" }),
        })
      ).status,
      (await call(base, "PUT", one, url, { body })).status,
      (await call(base, "GET", one, url, { headers: keyed() })).status,
      (await call(base, "GET", one, url, { headers: keyed(GLOBEX_KEY) })).status,
      (await call(base, "GET", "/v1/templates", "/v1/templates", { headers: keyed() })).status,
      (await call(base, "GET", "/v1/templates", "/v1/templates")).status,
      (
        await call(base, "POST", previewPath, `${url}/preview`, {
          headers: keyed(),
          body: JSON.stringify({ lead_id: leadId }),
        })
      ).status,
      (
        await call(base, "POST", previewPath, `${url}/preview`, {
          headers: keyed(GLOBEX_KEY),
          body: JSON.stringify({ lead_id: leadId }),
        })
      ).status,
      (
        await call(base, "POST", previewPath, `${url}/preview`, {
          headers: keyed(),
          body: JSON.stringify({ lead_id: "not a token" }),
        })
      ).status,
      (await call(base, "DELETE", one, url, { headers: { "x-api-key": ACME_KEY, "if-match": "1" } })).status,
      (await call(base, "DELETE", one, url, { headers: { "x-api-key": ACME_KEY } })).status,
      (await call(base, "DELETE", one, url, { headers: { "x-api-key": ACME_KEY } })).status,
    ];
    expect(statuses).toEqual([200, 412, 400, 401, 200, 404, 200, 401, 200, 404, 400, 412, 200, 404]);
    // The sequence captured next names this one.
    const smsTemplate = JSON.stringify({ channel: "sms", body: "Hi {{ lead.first_name }}" });
    const sms = await call(base, "PUT", one, "/v1/templates/first-touch", {
      headers: keyed(),
      body: smsTemplate,
    });
    expect(sms.status).toBe(201);
  });

  it("captures the sequences routes: created, replaced, read, listed, deleted, and their failures", async () => {
    const one = "/v1/sequences/{name}";
    const url = "/v1/sequences/openapi-welcome";
    const body = JSON.stringify({
      priority: 10,
      match: { min_pred_prob: 0.7 },
      steps: [
        { delay: "30m", channel: "sms", template: "first-touch" },
        { delay: "1d", channel: "email" },
      ],
      send_window: { timezone: "America/New_York", days: ["mon", "fri"], start: "09:00", end: "18:00" },
    });
    const created = await call(base, "PUT", one, url, { headers: keyed(), body });
    expect(created.status).toBe(201);
    const revision = (created.body as { data: { revision: number } }).data.revision;
    const statuses = [
      (await call(base, "PUT", one, url, { headers: { ...keyed(), "if-match": `"${revision}"` }, body }))
        .status,
      (await call(base, "PUT", one, url, { headers: { ...keyed(), "if-match": `"${revision}"` }, body }))
        .status,
      (
        await call(base, "PUT", one, url, {
          headers: keyed(),
          body: JSON.stringify({ steps: [{ delay: "30x", channel: "fax" }] }),
        })
      ).status,
      (await call(base, "PUT", one, url, { body })).status,
      (await call(base, "GET", one, url, { headers: keyed() })).status,
      (await call(base, "GET", one, url, { headers: keyed(GLOBEX_KEY) })).status,
      (await call(base, "GET", one, "/v1/sequences/Not_Valid", { headers: keyed() })).status,
      (await call(base, "GET", "/v1/sequences", "/v1/sequences", { headers: keyed() })).status,
      (await call(base, "GET", "/v1/sequences", "/v1/sequences")).status,
      (await call(base, "DELETE", one, url, { headers: { "x-api-key": ACME_KEY, "if-match": "1" } })).status,
      (await call(base, "DELETE", one, url, { headers: { "x-api-key": ACME_KEY } })).status,
      (await call(base, "DELETE", one, url, { headers: { "x-api-key": ACME_KEY } })).status,
      (await call(offlineBase, "PUT", one, url, { headers: keyed(), body })).status,
    ];
    expect(statuses).toEqual([200, 412, 400, 401, 200, 404, 400, 200, 401, 412, 200, 404, 503]);
    const listed = captures.find((c) => c.path === "/v1/sequences" && c.status === 200)!;
    expect((listed.body as { data: { count: number } }).data.count).toBe(1);
  });

  it("captures the enrolment routes: enrolled, already enrolled, unenrolled, and their failures", async () => {
    const sequence = JSON.stringify({ steps: [{ delay: "1d", channel: "hook" }] });
    expect(
      (
        await call(base, "PUT", "/v1/sequences/{name}", "/v1/sequences/openapi-manual", {
          headers: keyed(),
          body: sequence,
        })
      ).status,
    ).toBe(201);
    const lead = await call(base, "POST", "/v1/lead", "/v1/lead", {
      headers: keyed(),
      body: JSON.stringify(ALEX),
    });
    const leadId = (lead.body as { data: { lead_id: string } }).data.lead_id;
    const enroll = "/v1/lead/{id}/enroll";
    const unenroll = "/v1/lead/{id}/unenroll";
    const statuses = [
      (
        await call(base, "POST", enroll, `/v1/lead/${leadId}/enroll`, {
          headers: keyed(),
          body: JSON.stringify({ sequence: "openapi-manual" }),
        })
      ).status,
      (
        await call(base, "POST", enroll, `/v1/lead/${leadId}/enroll`, {
          headers: keyed(),
          body: JSON.stringify({ sequence: "no-such-sequence" }),
        })
      ).status,
      (
        await call(base, "POST", enroll, `/v1/lead/${leadId}/enroll`, {
          headers: keyed(),
          body: JSON.stringify({ sequence: "Not Valid" }),
        })
      ).status,
      (
        await call(base, "POST", unenroll, `/v1/lead/${leadId}/unenroll`, {
          headers: { "x-api-key": ACME_KEY },
        })
      ).status,
      (
        await call(base, "POST", unenroll, "/v1/lead/no-such-lead/unenroll", {
          headers: { "x-api-key": ACME_KEY },
        })
      ).status,
    ];
    expect(statuses).toEqual([202, 404, 400, 202, 404]);
  });

  it("captures the channels routes: stored, replaced, read, listed, deleted, and their failures", async () => {
    const one = "/v1/channels/{channel}";
    const sid = `AC${"0a".repeat(16)}`;
    const bodies: Record<string, unknown> = {
      sms: { provider: "twilio", account_sid: sid, auth_token: "0123456789abcdef0123", from: "+14155552671" },
      email: { provider: "sendgrid", api_key: "SG.openapi-capture-key", from: "hello@acme.example" },
      slack: { webhook_url: "https://hooks.slack.com/services/T0/B0/openapi" },
      hook: {
        url: "https://crm.acme.example/hook",
        secret: `whsec_${Buffer.alloc(32, 1).toString("base64")}`,
      },
    };
    const bad: Record<string, unknown> = {
      sms: { provider: "twilio", account_sid: "AC1", auth_token: "x", from: "+1" },
      email: { provider: "sendgrid", api_key: "k", from: "nobody" },
      slack: { webhook_url: "http://hooks.slack.com/x" },
      hook: { url: "https://crm.acme.example/hook", secret: "plain" },
    };
    const statuses: number[] = [];
    for (const [channel, body] of Object.entries(bodies)) {
      const path = `/v1/channels/${channel}`;
      const created = await call(base, "PUT", path, path, { headers: keyed(), body: JSON.stringify(body) });
      const revision = (created.body as { data: { revision: number } }).data.revision;
      statuses.push(
        created.status,
        (
          await call(base, "PUT", path, path, {
            headers: { ...keyed(), "if-match": `"${revision}"` },
            body: JSON.stringify(body),
          })
        ).status,
        (
          await call(base, "PUT", path, path, {
            headers: { ...keyed(), "if-match": `"${revision}"` },
            body: JSON.stringify(body),
          })
        ).status,
        (await call(base, "PUT", path, path, { headers: keyed(), body: JSON.stringify(bad[channel]) }))
          .status,
      );
    }
    expect(statuses).toEqual([
      201, 200, 412, 400, 201, 200, 412, 400, 201, 200, 412, 400, 201, 200, 412, 400,
    ]);
    // Without CHANNEL_SECRETS_KEY: 409 not_configured.
    const bare = await startIntake({ server });
    try {
      const bareBase = await bare.app.listen({ host: "127.0.0.1", port: 0 });
      const path = "/v1/channels/slack";
      const refused = await call(bareBase, "PUT", path, path, {
        headers: keyed(),
        body: JSON.stringify(bodies.slack),
      });
      expect(refused.status).toBe(409);
    } finally {
      await bare.close();
    }
    const reads = [
      (await call(base, "GET", one, "/v1/channels/sms", { headers: keyed() })).status,
      (await call(base, "GET", one, "/v1/channels/sms", { headers: keyed(GLOBEX_KEY) })).status,
      (await call(base, "GET", one, "/v1/channels/fax", { headers: keyed() })).status,
      (await call(base, "GET", "/v1/channels", "/v1/channels", { headers: keyed() })).status,
      (await call(base, "GET", "/v1/channels", "/v1/channels")).status,
      (
        await call(base, "DELETE", one, "/v1/channels/hook", {
          headers: { "x-api-key": ACME_KEY, "if-match": "1" },
        })
      ).status,
      (await call(base, "DELETE", one, "/v1/channels/hook", { headers: { "x-api-key": ACME_KEY } })).status,
      (await call(base, "DELETE", one, "/v1/channels/hook", { headers: { "x-api-key": ACME_KEY } })).status,
    ];
    expect(reads).toEqual([200, 404, 400, 200, 401, 412, 200, 404]);
  });

  it("captures the suppressions routes: added, found, listed, lifted, and their failures", async () => {
    const path = "/v1/suppressions";
    const body = JSON.stringify({ channel: "email", address: "Openapi@Example.com" });
    const added = await call(base, "POST", path, path, { headers: keyed(), body });
    expect(added.status).toBe(201);
    const id = (added.body as { data: { id: string } }).data.id;
    const one = "/v1/suppressions/{id}";
    const statuses = [
      (await call(base, "POST", path, path, { headers: keyed(), body })).status,
      (
        await call(base, "POST", path, path, {
          headers: keyed(),
          body: JSON.stringify({ channel: "sms", address: "12" }),
        })
      ).status,
      (
        await call(base, "GET", path, `${path}?channel=email&address=openapi%40example.com`, {
          headers: keyed(),
        })
      ).status,
      (await call(base, "GET", path, path, { headers: keyed() })).status,
      (await call(base, "GET", path, `${path}?address=x`, { headers: keyed() })).status,
      (await call(base, "DELETE", one, `${path}/${id}`, { headers: { "x-api-key": GLOBEX_KEY } })).status,
      (await call(base, "DELETE", one, `${path}/${id}`, { headers: { "x-api-key": ACME_KEY } })).status,
      (await call(base, "DELETE", one, `${path}/${id}`, { headers: { "x-api-key": ACME_KEY } })).status,
    ];
    expect(statuses).toEqual([200, 400, 200, 200, 400, 404, 200, 404]);
  });

  it("captures the model routes: read, rolled back, and their failures", async () => {
    const rollback = "/ops/model/rollback";
    const statuses = [
      (await call(base, "GET", "/ops/model", "/ops/model", { headers: keyed() })).status,
      (await call(base, "GET", "/ops/model", "/ops/model")).status,
      (await call(base, "POST", rollback, rollback, { headers: keyed() })).status,
      (await call(base, "POST", rollback, rollback, { headers: keyed(GLOBEX_KEY) })).status,
    ];
    await new ModelRegistry(intake.broker.handles().models).promote(modelRecord("openapi-model"), new Date());
    statuses.push((await call(base, "GET", "/ops/model", "/ops/model", { headers: keyed() })).status);
    statuses.push((await call(base, "POST", rollback, rollback, { headers: keyed(GLOBEX_KEY) })).status);
    expect(statuses).toEqual([200, 401, 403, 409, 200, 200]);
  });

  it("captures the console's reads: the caller, the upcoming follow-ups, the summary, and their failures", async () => {
    const upcoming = "/ops/followups/upcoming";
    const statuses = [
      (await call(base, "GET", "/v1/caller", "/v1/caller", { headers: keyed() })).status,
      (await call(base, "GET", "/v1/caller", "/v1/caller", { headers: keyed("wrong") })).status,
      (await call(base, "GET", upcoming, `${upcoming}?channel=hook&limit=5`, { headers: keyed() })).status,
      (await call(base, "GET", upcoming, `${upcoming}?limit=0`, { headers: keyed() })).status,
      (await call(base, "GET", "/ops/summary", "/ops/summary", { headers: keyed() })).status,
      (await call(base, "GET", "/ops/summary", "/ops/summary", { headers: keyed("wrong") })).status,
    ];
    expect(statuses).toEqual([200, 401, 200, 400, 200, 401]);
  });

  it("documents the public suppression routes with their media types, and serves them", async () => {
    expect(Object.keys(document.paths["/u/{token}"]?.get?.responses["200"]?.content ?? {})).toEqual([
      "text/html",
    ]);
    expect(
      Object.keys(document.paths["/hooks/twilio/inbound/{tenant}"]?.post?.responses["200"]?.content ?? {}),
    ).toEqual(["text/xml"]);
    const res = await fetch(`${base}/u/not-a-token`);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const inbound = await fetch(`${base}/hooks/twilio/inbound/acme`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "Body=STOP",
    });
    expect(inbound.status).toBe(403);
  });

  it("matches each captured body to the document's schema for its path, method and status", () => {
    expect(captures.length).toBeGreaterThan(20);
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats.default(ajv);
    // The check can fail: a failure's envelope is no accepted lead.
    const accepted =
      dereferenced.paths["/v1/lead"]?.post?.responses["200"]?.content?.["application/json"]?.schema;
    const refused = captures.find((c) => c.path === "/v1/lead" && c.status === 400)!;
    expect(ajv.validate(accepted as object, refused.body)).toBe(false);
    for (const capture of captures) {
      const where = `${capture.method} ${capture.path} ${capture.status}`;
      const operation = dereferenced.paths[capture.path]?.[capture.method.toLowerCase()];
      expect(operation, where).toBeDefined();
      const response = operation!.responses[String(capture.status)];
      expect(response, `${where} is not in the document`).toBeDefined();
      expect(capture.contentType, where).toMatch(/^application\/json/);
      const schema = response!.content?.["application/json"]?.schema;
      expect(schema, where).toBeDefined();
      const check = ajv.compile(schema as object);
      const valid = check(capture.body);
      expect(valid, `${where}: ${ajv.errorsText(check.errors)} in ${JSON.stringify(capture.body)}`).toBe(
        true,
      );
    }
  });

  it("covered a success and a failure of every /v1 and /ops operation", () => {
    for (const { method, path } of operations(document).filter(({ path }) => /^\/(v1|ops)\//.test(path))) {
      const seen = captures.filter((c) => c.method.toLowerCase() === method && c.path === path);
      expect(
        seen.some((c) => c.status < 300),
        `${method} ${path} success`,
      ).toBe(true);
      expect(
        seen.some((c) => c.status >= 400),
        `${method} ${path} failure`,
      ).toBe(true);
    }
  });
});

describe("GET /docs", () => {
  it("is one HTML page, public, without script, under a strict Content-Security-Policy", async () => {
    const res = await fetch(`${base}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toMatch(/script-src/);
    const html = await res.text();
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/ on\w+=/i);
    // The one inline style is the one the policy's hash allows.
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1] ?? "";
    expect(csp).toContain(`style-src 'sha256-${createHash("sha256").update(style).digest("base64")}'`);
    for (const { method, path, operation } of operations(document)) {
      expect(html).toContain(`<code>${path}</code>`);
      expect(html).toContain(`<code>${operation.operationId}</code>`);
      expect(html).toContain(`<span class="method">${method}</span>`);
    }
    expect(html).toContain('id="schema-ErrorEnvelope"');
    expect(html).toContain('href="#schema-LeadRequestInput"');
  });

  it("answers a method it does not serve with the error envelope", async () => {
    const res = await fetch(`${base}/docs`, { method: "POST" });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await res.json()).toMatchObject({ ok: false, error: { code: "not_found" } });
  });
});

describe("renderReference", () => {
  const hostile = '<script>alert("x")</script>';
  const attribute = '"><img src=x onerror=alert(1)>';
  const doc: OpenApiDocument = {
    openapi: "3.1.0",
    info: { title: hostile, version: "1.0.0", description: attribute },
    tags: [{ name: attribute, description: hostile }],
    paths: {
      [`/x/{${attribute}}`]: {
        get: {
          operationId: attribute,
          summary: hostile,
          description: hostile,
          tags: [attribute],
          security: [{ [attribute]: [] }],
          parameters: [
            {
              name: attribute,
              in: "path",
              required: true,
              description: hostile,
              schema: { enum: [hostile] },
            },
          ],
          responses: {
            [attribute]: {
              description: hostile,
              content: { [attribute]: { schema: { $ref: `#/components/schemas/${attribute}` } } },
            },
          },
        },
      },
    },
    components: {
      schemas: { [attribute]: { type: "string", description: hostile, [hostile]: attribute } },
      securitySchemes: {
        [attribute]: { type: "apiKey", in: "header", name: attribute, description: hostile },
      },
    },
  };

  it("escapes every string of the document", () => {
    const html = renderReference(doc);
    expect(html).not.toContain("<script");
    expect(html).not.toContain("<img");
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    expect(html).toContain("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
    // The summary is rendered, escaped, not dropped.
    expect(html).toContain("<strong>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</strong>");
  });

  it("links a schema reference to the schema, with the anchor escaped", () => {
    const html = renderReference(doc);
    const anchor = `schema-${encodeURIComponent(attribute)}`;
    expect(html).toContain(`href="#${anchor}"`);
    expect(html).toContain(`id="${anchor}"`);
  });
});
