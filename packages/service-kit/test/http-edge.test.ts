import { ErrorEnvelope } from "@followup/contracts";
import { errorSummary, rawExchange, slowClientBeside } from "@followup/nats-harness";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ConfigError,
  createHttpServer,
  createLogger,
  createMetricsRegistry,
  httpLimitsOf,
  Readiness,
  startHealthServer,
} from "../src/index.js";

/**
 * The edge every service's HTTP server shares, over real loopback connections: what Node's
 * parser or fastify's router refuses is answered with the envelope, every response says
 * nosniff, and a slow client is cut off while other connections are served.
 */

const TIMEOUT_MS = 1000;
const limits = { HTTP_HEADERS_TIMEOUT_MS: TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS: TIMEOUT_MS };
const logger = createLogger({ service: "kit-test", level: "silent" });

let health: { app: FastifyInstance; port: number };
/** A server of the kit with a route that reads a body, for the slow body. */
let api: FastifyInstance;
let apiPort: number;

beforeAll(async () => {
  const readiness = new Readiness();
  readiness.set("nats", true);
  health = await startHealthServer({
    port: 0,
    host: "127.0.0.1",
    registry: createMetricsRegistry("kit-test"),
    readiness,
    logger,
    limits: { ...limits, HTTP_MAX_REQUESTS_PER_SOCKET: 3 },
  });
  api = createHttpServer(limits);
  api.post("/echo", async (request) => ({ ok: true, data: request.body }));
  api.get("/item/:id", async (request) => ({ ok: true, data: request.params }));
  await api.listen({ host: "127.0.0.1", port: 0 });
  apiPort = (api.server.address() as { port: number }).port;
});

afterAll(async () => {
  await health?.app.close();
  await api?.close();
});

const get = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;
/** For a request the server answers and would keep the connection open after. */
const CLOSE = "connection: close\r\n";

describe("what the parser or the router refuses is answered with the envelope", () => {
  it.each([
    ["a 150-character path segment", 404, "not_found", get(`/readyz/${"a".repeat(150)}`, CLOSE)],
    ["a 20 KB header", 431, "headers_too_large", get("/healthz", `x-pad: ${"a".repeat(20_000)}\r\n`)],
    ["a raw space in the path", 400, "bad_request", get("/healthz/a b")],
    ["a control character in the path", 400, "bad_request", get("/healthz/a\tb")],
    ["a header name with a space", 400, "bad_request", get("/healthz", "bad header: x\r\n")],
    ["no Host header in HTTP/1.1", 400, "bad_request", "GET /healthz HTTP/1.1\r\n\r\n"],
  ])("%s: %i %s", async (_name, status, code, request) => {
    const { responses } = await rawExchange(health.port, request);
    expect(responses).toHaveLength(1);
    const response = responses[0]!;
    expect(errorSummary(response)).toEqual({ status, ok: false, code, requestId: true, nosniff: true });
    expect(response.headers["content-type"]).toMatch(/^application\/json/);
    expect(ErrorEnvelope.safeParse(JSON.parse(response.body)).success).toBe(true);
    // The path is not echoed back for what the parser refused.
    if (status !== 404) expect(response.body).not.toContain("a b");
  });

  it("a %-escape that does not decode in a route's parameter: 400 bad_request", async () => {
    const { responses } = await rawExchange(apiPort, get("/item/%zz", CLOSE));
    expect(errorSummary(responses[0]!)).toEqual({
      status: 400,
      ok: false,
      code: "bad_request",
      requestId: true,
      nosniff: true,
    });
  });

  it("a 150-character parameter reaches its route (which validates it)", async () => {
    const id = "a".repeat(150);
    const res = await fetch(`http://127.0.0.1:${apiPort}/item/${id}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, data: { id } });
  });
});

describe("every response says nosniff", () => {
  it.each([
    ["/healthz", 200],
    ["/readyz", 200],
    ["/metrics", 200],
    ["/no-such-route", 404],
  ])("%s (%i)", async (path, status) => {
    const res = await fetch(`http://127.0.0.1:${health.port}${path}`);
    expect(res.status).toBe(status);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("x-request-id")).toBeTruthy();
    if (status === 404) {
      const body = ErrorEnvelope.parse(await res.json());
      expect(body.error.code).toBe("not_found");
      expect(body.request_id).toBe(res.headers.get("x-request-id"));
    }
  });

  it("and a kept-alive connection is closed after HTTP_MAX_REQUESTS_PER_SOCKET requests", async () => {
    const one = get("/healthz");
    const { responses } = await rawExchange(health.port, one.repeat(4));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(responses[2]!.headers.connection).toBe("close");
    expect(responses[0]!.headers.connection).toBe("keep-alive");
  });
});

describe("a slow client is cut off after the timeout while others are served", () => {
  async function dripAndServe(port: number, raw: string, dripAfter = 0) {
    const meanwhile = async () => (await fetch(`http://127.0.0.1:${health.port}/healthz`)).status;
    const { problems, responses } = await slowClientBeside(port, raw, {
      timeoutMs: TIMEOUT_MS,
      dripAfter,
      meanwhile,
    });
    expect(problems).toEqual([]);
    // Written raw on the socket: a complete JSON response that closes the connection.
    expect(responses[0]!.headers).toMatchObject({
      "content-type": "application/json; charset=utf-8",
      connection: "close",
    });
    expect(responses.map(errorSummary)).toEqual([
      { status: 408, ok: false, code: "request_timeout", requestId: true, nosniff: true },
    ]);
  }

  it("on its headers", async () => {
    await dripAndServe(health.port, get("/healthz", `x-pad: ${"a".repeat(200)}\r\n`));
  });

  it("on its body", async () => {
    const body = JSON.stringify({ text: "a".repeat(200) });
    const head = `POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
    // The headers at once, then the body a byte at a time: only the whole-request timeout applies.
    await dripAndServe(apiPort, head + body, head.length);
  });
});

describe("limits", () => {
  it("take their defaults when unset, and refuse headers allowed longer than the whole request", () => {
    expect(httpLimitsOf({})).toEqual({
      HTTP_HEADERS_TIMEOUT_MS: 10_000,
      HTTP_REQUEST_TIMEOUT_MS: 30_000,
      HTTP_KEEPALIVE_TIMEOUT_MS: 72_000,
      HTTP_MAX_REQUESTS_PER_SOCKET: 1000,
    });
    expect(() => httpLimitsOf({ HTTP_HEADERS_TIMEOUT_MS: 5000, HTTP_REQUEST_TIMEOUT_MS: 1000 })).toThrow(
      ConfigError,
    );
    expect(() => httpLimitsOf({ HTTP_HEADERS_TIMEOUT_MS: 5000, HTTP_REQUEST_TIMEOUT_MS: 1000 })).toThrow(
      /HTTP_HEADERS_TIMEOUT_MS: expected at most HTTP_REQUEST_TIMEOUT_MS \(1000\); got 5000/,
    );
  });
});
