import { ErrorEnvelope } from "@followup/contracts";
import { errorSummary, rawExchange, slowClientBeside } from "@followup/nats-harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACME_KEY, ALEX, type Intake, startIntake } from "./fixtures.js";

/**
 * lead-intake on a real loopback port, the kit's edge in front of its routes: what fastify or
 * Node's parser refused used to escape the envelope (414, 431, a bare 400), JSON went out
 * without nosniff, and a client sending a byte every 100 ms was never cut off.
 */

const TIMEOUT_MS = 1000;
let intake: Intake;
let base: string;
let port: number;

beforeAll(async () => {
  // No NATS: nothing here needs it (a lead is answered 503 or from the outbox, never published).
  intake = await startIntake({
    env: { HTTP_HEADERS_TIMEOUT_MS: String(TIMEOUT_MS), HTTP_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS) },
  });
  base = await intake.app.listen({ host: "127.0.0.1", port: 0 });
  port = Number(new URL(base).port);
});

afterAll(async () => {
  await intake?.close();
});

const request = (method: string, path: string, extra = "", body = "") =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: ${ACME_KEY}\r\n${extra}\r\n${body}`;
const CLOSE = "connection: close\r\n";

describe("every failure is the envelope, with its status", () => {
  it.each([
    // Lead ids are 1-64 characters: a longer one is not found, as any id that is not a token.
    ["a 150-character lead id", 404, "not_found", request("GET", `/v1/lead/${"a".repeat(150)}`, CLOSE)],
    [
      "a 150-character lead id (outcome)",
      404,
      "not_found",
      request("POST", `/v1/lead/${"a".repeat(150)}/outcome`, CLOSE),
    ],
    [
      "a 20 KB header",
      431,
      "headers_too_large",
      request("GET", "/v1/lead/x", `x-pad: ${"a".repeat(20_000)}\r\n`),
    ],
    ["a raw space in the path", 400, "bad_request", request("GET", "/v1/lead/a b")],
    ["a bad %-escape in the lead id", 400, "bad_request", request("GET", "/v1/lead/%zz", CLOSE)],
    ["no Host header in HTTP/1.1", 400, "bad_request", "GET /healthz HTTP/1.1\r\n\r\n"],
  ])("%s: %i %s", async (_name, status, code, raw) => {
    const { responses } = await rawExchange(port, raw);
    expect(responses).toHaveLength(1);
    const response = responses[0]!;
    expect(errorSummary(response)).toEqual({ status, ok: false, code, requestId: true, nosniff: true });
    const envelope = ErrorEnvelope.parse(JSON.parse(response.body));
    // fastify's own bodies echoed the path back; the envelope's message does not.
    expect(envelope.error.message).not.toContain("a".repeat(150));
  });

  it("a 150-character lead id without a key is a 401, as for any lead id", async () => {
    const res = await fetch(`${base}/v1/lead/${"a".repeat(150)}`);
    expect(res.status).toBe(401);
    expect(ErrorEnvelope.parse(await res.json()).error.code).toBe("unauthorized");
  });
});

describe("every response says nosniff", () => {
  it.each([
    ["a 200", "/healthz", {}, 200],
    ["/metrics", "/metrics", {}, 200],
    ["a 401", "/v1/lead/some-lead", {}, 401],
    ["a 404", `/v1/lead/${"a".repeat(65)}`, { "x-api-key": ACME_KEY }, 404],
    ["a 503 (no NATS)", "/v1/lead/some-lead", { "x-api-key": ACME_KEY }, 503],
    ["an unknown route", "/nowhere", {}, 404],
  ])("%s", async (_name, path, headers, status) => {
    const res = await fetch(`${base}${path}`, { headers });
    expect(res.status).toBe(status);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("a 400 from the error handler (a bad body) too", async () => {
    const res = await fetch(`${base}/v1/lead`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": ACME_KEY },
      body: "{not json",
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });
});

describe("a slow client is cut off after the timeout while others are served", () => {
  async function dripAndServe(raw: string, dripAfter = 0) {
    const meanwhile = async () => (await fetch(`${base}/healthz`)).status;
    const { problems, responses } = await slowClientBeside(port, raw, {
      timeoutMs: TIMEOUT_MS,
      dripAfter,
      meanwhile,
    });
    expect(problems).toEqual([]);
    expect(responses.map(errorSummary)).toEqual([
      { status: 408, ok: false, code: "request_timeout", requestId: true, nosniff: true },
    ]);
    return responses[0]!;
  }

  it("on its headers", async () => {
    await dripAndServe(request("GET", "/v1/lead/x", `x-pad: ${"a".repeat(200)}\r\n`));
  });

  it("on its body, and the lead is not accepted", async () => {
    const body = JSON.stringify(ALEX);
    const head = request(
      "POST",
      "/v1/lead",
      `content-type: application/json\r\ncontent-length: ${body.length}\r\nx-request-id: slow-body-1\r\n`,
    );
    const response = await dripAndServe(head + body, head.length);
    // Its headers were read: the 408 carries the caller's request id.
    expect(response.headers["x-request-id"]).toBe("slow-body-1");
    expect(intake.logs.some((line) => line.includes('"lead_accepted"'))).toBe(false);
  });
});
