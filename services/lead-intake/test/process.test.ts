import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type NatsServer, spawnService, startNatsServer, waitFor } from "@followup/nats-harness";
import { EXIT_CONFIG } from "@followup/service-kit";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { ACME_KEY, ALEX, API_KEYS, SECRET } from "./fixtures.js";

/** lead-intake as the process it runs as: `node --import tsx src/main.ts`. */
function spawnIntake(env: Record<string, string | undefined>) {
  return spawnService({ service: "lead-intake", env: { LOG_LEVEL: "info", ...env } });
}

let server: NatsServer;

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  await server?.cleanup();
});

describe("lead-intake as a process", () => {
  it("starts and answers while NATS is down, then connects, provisions and accepts leads", async () => {
    await server.stop();
    const port = await freePort();
    const outboxDir = mkdtempSync(join(tmpdir(), "intake-process-"));
    onTestFinished(() => rmSync(outboxDir, { recursive: true, force: true }));
    const service = spawnIntake({
      NATS_URL: server.url,
      PORT: String(port),
      HOST: "127.0.0.1",
      API_KEYS,
      FOLLOWUP_HOOK_SECRET: SECRET,
      OUTBOX_DIR: outboxDir,
    });
    try {
      await service.waitForLine((line) => line.includes("lead_intake_started"), 20_000);
      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(503);
      const queue = await fetch(`${base}/ops/followup/queue`, { headers: { "x-api-key": ACME_KEY } });
      expect(await queue.json()).toMatchObject({ enabled: false, reason: expect.stringContaining("NATS") });
      // Fail-open: accepted into the durable local outbox.
      const queued = await fetch(`${base}/v1/lead`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": ACME_KEY },
        body: JSON.stringify(ALEX),
      });
      expect(queued.status).toBe(202);
      expect(queued.headers.get("x-lead-queued")).toBe("local");

      await server.start();
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, {
        description: "lead-intake to connect and provision",
        timeoutMs: 20_000,
      });
      const queueStatus = async () =>
        (await (
          await fetch(`${base}/ops/followup/queue`, { headers: { "x-api-key": ACME_KEY } })
        ).json()) as { outbox?: { queued: number } };
      await waitFor(async () => (await queueStatus()).outbox?.queued === 0, {
        description: "the outbox to drain",
        timeoutMs: 10_000,
      });
      const accepted = await fetch(`${base}/v1/lead`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": ACME_KEY },
        body: JSON.stringify(ALEX),
      });
      expect(accepted.status).toBe(200);
      expect(await queueStatus()).toEqual({
        enabled: true,
        queue: "followups",
        jobs: { queued: 0, scheduled: 0, dead: 0 },
        outbox: { queued: 0, capacity: 10_000, draining: false },
      });
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/lead_intake_nats_available\{service="lead-intake"\} 1/);

      service.kill("SIGTERM");
      const exit = await service.waitForExit(15_000);
      expect(exit.code).toBe(0);
      const output = service.output().join("\n");
      expect(output).toContain("shutdown_complete");
      expect(output).not.toContain(ACME_KEY);
      expect(output).not.toContain(ALEX.phone);
    } finally {
      await service.cleanup();
    }
  });

  it("stops with EX_CONFIG naming a bad API_KEYS, without printing it", async () => {
    const service = spawnIntake({
      API_KEYS: "sk_SECRET_one:acme,sk_SECRET_one:globex",
      NATS_URL: server.url,
    });
    try {
      const exit = await service.waitForExit(20_000);
      expect(exit.code).toBe(EXIT_CONFIG);
      const output = service.output().join("\n");
      expect(output).toContain("API_KEYS");
      expect(output).toContain("pair 2 repeats the key of an earlier pair");
      expect(output).not.toContain("SECRET");
    } finally {
      await service.cleanup();
    }
  });
});
