import Fastify from "fastify";
import { Counter } from "prom-client";
import { describe, expect, it } from "vitest";
import { createMetricsRegistry, healthRoutes, Readiness } from "../src/index.js";

describe("health routes", () => {
  it("serve metrics with default metrics and the service label", async () => {
    const registry = createMetricsRegistry("scheduler");
    new Counter({ name: "followups_scheduled_total", help: "x", registers: [registry] }).inc(3);
    const app = Fastify();
    await app.register(healthRoutes, { registry, readiness: new Readiness() });
    const res = await app.inject("/metrics");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toContain("text/plain");
    expect(res.body).toContain('followups_scheduled_total{service="scheduler"} 3');
    expect(res.body).toContain("process_resident_memory_bytes");
    expect(res.body).toContain("nodejs_eventloop_lag_seconds");
  });

  it("report alive always, ready only when every check passes", async () => {
    const readiness = new Readiness();
    const app = Fastify();
    await app.register(healthRoutes, { registry: createMetricsRegistry("x"), readiness });
    expect((await app.inject("/healthz")).statusCode).toBe(200);
    expect((await app.inject("/readyz")).statusCode).toBe(503);
    readiness.set("nats", true);
    readiness.set("streams", false, "provisioning");
    const notReady = await app.inject("/readyz");
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json().data.checks.streams).toEqual({ ok: false, detail: "provisioning" });
    readiness.set("streams", true);
    expect((await app.inject("/readyz")).statusCode).toBe(200);
    readiness.set("nats", false, "disconnected");
    expect((await app.inject("/readyz")).json()).toMatchObject({ ok: false, data: { ready: false } });
  });
});
