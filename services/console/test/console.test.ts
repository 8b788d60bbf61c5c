import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createLogger, createMetricsRegistry, Readiness } from "@followup/service-kit";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConsole } from "../src/app.js";
import { parseConsumerLag } from "../src/lag.js";
import { createConsoleMetrics } from "../src/metrics.js";
import { REPORTS_PATHS, Upstream } from "../src/upstream.js";

/**
 * The console's own HTTP behaviour against a stand-in lead-intake (a plain HTTP server that
 * records what reaches it); the pages against the real engine are test/e2e/console.test.ts.
 */

let upstream: Server;
let upstreamUrl: string;
const seen: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] = [];
let app: FastifyInstance;
/** A stand-in reports service: answers every call with the path it was sent. */
let reports: Server;
const reportsSeen: { url: string; key: string | undefined }[] = [];

beforeAll(async () => {
  reports = createServer((req, res) => {
    const key = req.headers["x-api-key"];
    reportsSeen.push({ url: req.url ?? "", key: typeof key === "string" ? key : undefined });
    res.writeHead(200, { "content-type": "application/json", "set-cookie": "a=b" });
    res.end(JSON.stringify({ ok: true, data: { reports: req.url } }));
  });
  await new Promise<void>((resolve) => reports.listen(0, "127.0.0.1", resolve));
  upstream = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      const known = req.headers["x-api-key"] === "good-key";
      if (!known) {
        res.writeHead(401, { "content-type": "application/json" });
        return res.end(
          JSON.stringify({ ok: false, error: { code: "unauthorized", message: "no" }, request_id: "x" }),
        );
      }
      if (req.url === "/v1/caller") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({ ok: true, data: { tenant: "acme" } }));
      }
      if (req.url?.startsWith("/v1/lead/")) {
        res.writeHead(404, { "content-type": "application/json" });
        return res.end(
          JSON.stringify({
            ok: false,
            error: { code: "not_found", message: "lead not found" },
            request_id: "x",
          }),
        );
      }
      res.writeHead(201, { "content-type": "application/json", etag: '"7"', "set-cookie": "a=b" });
      res.end(JSON.stringify({ ok: true, data: { echoed: body } }));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const registry = createMetricsRegistry("console");
  ({ app } = await buildConsole({
    config: {
      LEAD_INTAKE_URL: upstreamUrl,
      REPORTS_URL: `http://127.0.0.1:${(reports.address() as AddressInfo).port}`,
      CONSOLE_METRICS_URLS: [],
      CONSOLE_MAX_STREAMS: 2,
      CONSOLE_UPSTREAM_TIMEOUT_MS: 2000,
    },
    logger: createLogger({ service: "console", level: "silent" }),
    registry,
    metrics: createConsoleMetrics(registry),
    readiness: new Readiness(),
    nats: () => undefined,
  }));
});

afterAll(async () => {
  await app?.close();
  await new Promise((resolve) => upstream?.close(resolve));
  await new Promise((resolve) => reports?.close(resolve));
});

describe("the pages", () => {
  it("serves index.html and its modules under a strict policy, and nothing else", async () => {
    const page = await app.inject({ url: "/console/" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expect(page.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(page.headers["content-security-policy"]).not.toMatch(/unsafe/);
    expect(page.body).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect((await app.inject({ url: "/console/js/app.js" })).headers["content-type"]).toMatch(/javascript/);
    expect((await app.inject({ url: "/console/../src/main.ts" })).statusCode).toBe(404);
    expect((await app.inject({ url: "/console/js/nope.js" })).statusCode).toBe(404);
  });

  it("builds every page from text nodes: no script assigns HTML", async () => {
    const { readdirSync, readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { PUBLIC_DIR } = await import("../src/pages.js");
    const scripts = ["js", "js/pages"].flatMap((dir) =>
      readdirSync(join(PUBLIC_DIR, dir))
        .filter((f) => f.endsWith(".js"))
        .map((f) => readFileSync(join(PUBLIC_DIR, dir, f), "utf8")),
    );
    expect(scripts.length).toBeGreaterThan(8);
    for (const source of scripts)
      expect(source).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|eval\(|new Function/);
  });
});

describe("the proxy to lead-intake", () => {
  it("passes method, path, query, body and the caller's key, and nothing of the browser's else", async () => {
    const res = await app.inject({
      method: "PUT",
      url: "/v1/sequences/welcome?x=1",
      headers: {
        "x-api-key": "good-key",
        "content-type": "application/json",
        cookie: "session=1",
        "if-match": '"3"',
      },
      payload: '{"steps":[]}',
    });
    expect(res.statusCode).toBe(201);
    expect(res.headers.etag).toBe('"7"');
    expect(res.headers["set-cookie"]).toBeUndefined();
    const call = seen.at(-1)!;
    expect(call).toMatchObject({ method: "PUT", url: "/v1/sequences/welcome?x=1", body: '{"steps":[]}' });
    expect(call.headers["x-api-key"]).toBe("good-key");
    expect(call.headers["if-match"]).toBe('"3"');
    expect(call.headers.cookie).toBeUndefined();
  });

  it("answers lead-intake's refusal as it came", async () => {
    const res = await app.inject({ url: "/ops/dead-letters", headers: { "x-api-key": "bad" } });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe("unauthorized");
  });

  it("never leaves /v1 and /ops, however the path is spelt", () => {
    const target = new Upstream("http://127.0.0.1:1", 1000);
    expect(target.target("/v1/lead/x")?.pathname).toBe("/v1/lead/x");
    for (const path of [
      "/v1/../metrics",
      "/v1/%2e%2e/metrics",
      "/ops/..%2Freadyz",
      "//evil.example/v1/x",
      "/v2/x",
    ]) {
      const url = target.target(path);
      expect(url === null || /^\/(v1|ops)\//.test(url.pathname), path).toBe(true);
      if (url) expect(url.origin, path).toBe("http://127.0.0.1:1");
    }
    expect(target.target("/v1/../metrics")).toBeNull();
  });

  it("passes /v1/reports/* to the reports service with the caller's key, and only that", async () => {
    const before = seen.length;
    const res = await app.inject({
      url: "/v1/reports/sequences/welcome?since=2026-11-01",
      headers: { "x-api-key": "good-key", cookie: "session=1" },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().data.reports).toBe("/v1/reports/sequences/welcome?since=2026-11-01");
    expect(res.headers["set-cookie"]).toBeUndefined();
    expect(reportsSeen.at(-1)).toEqual({
      url: "/v1/reports/sequences/welcome?since=2026-11-01",
      key: "good-key",
    });
    expect(seen.length).toBe(before);
    // Normalised first: out of /v1/reports it is lead-intake's, out of /v1 nobody's.
    const count = reportsSeen.length;
    await app.inject({ url: "/v1/reports/../caller", headers: { "x-api-key": "good-key" } });
    expect(seen.at(-1)?.url).toBe("/v1/caller");
    expect(reportsSeen.length).toBe(count);
    const guard = new Upstream("http://127.0.0.1:1", 1000, "reports", REPORTS_PATHS);
    for (const path of ["/v1/reports/%2e%2e/%2e%2e/metrics", "/v1/reports/../lead/x", "/v1/reportsx/y"])
      expect(guard.target(path), path).toBeNull();
  });

  it("is a 503 envelope naming the service when it does not answer", async () => {
    const down = new Upstream("http://127.0.0.1:1", 1000, "reports", REPORTS_PATHS);
    const answer = await down.forward({ method: "GET", url: "/v1/reports/steps", headers: {} }, "r1");
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body.toString()).error.message).toBe("reports is unreachable");
    expect(down.target("/v1/lead/x")).toBeNull();
  });

  it("is a 503 envelope when lead-intake does not answer", async () => {
    const down = new Upstream("http://127.0.0.1:1", 1000);
    const answer = await down.forward({ method: "GET", url: "/v1/caller", headers: {} }, "r1");
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body.toString()).error.code).toBe("service_unavailable");
  });
});

describe("live lead streams", () => {
  it("asks for a key, checks it with lead-intake, and streams only a lead lead-intake shows the caller", async () => {
    expect((await app.inject({ url: "/console/live/lead/L1" })).statusCode).toBe(401);
    expect(
      (await app.inject({ url: "/console/live/lead/L1", headers: { "x-api-key": "bad" } })).statusCode,
    ).toBe(401);
    const unknown = await app.inject({ url: "/console/live/lead/L1", headers: { "x-api-key": "good-key" } });
    expect(unknown.statusCode).toBe(404);
    expect(seen.at(-1)?.url).toBe("/v1/lead/L1");
    const bad = await app.inject({ url: "/console/live/lead/a.b", headers: { "x-api-key": "good-key" } });
    expect(bad.statusCode).toBe(404);
  });
});

describe("consumer lag", () => {
  it("reads each durable's pending and ack pending, the largest of the copies", () => {
    const scheduler = [
      "# HELP jetstream_consumer_pending x",
      'jetstream_consumer_pending{consumer="scheduler-scored"} 4',
      'jetstream_consumer_ack_pending{consumer="scheduler-scored"} 2',
      "followups_due_total 9",
    ].join("\n");
    const copy = 'jetstream_consumer_pending{consumer="scheduler-scored"} 7';
    expect(parseConsumerLag([scheduler, copy])).toEqual([
      { consumer: "scheduler-scored", pending: 7, ack_pending: 2 },
    ]);
  });
});
