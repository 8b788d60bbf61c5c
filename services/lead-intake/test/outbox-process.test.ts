import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeEvent } from "@followup/contracts";
import { freePort, type NatsServer, spawnService, startNatsServer, waitFor } from "@followup/nats-harness";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEntryFileName } from "../src/outbox/outbox.js";
import { ACME_KEY, ALEX, API_KEYS, SECRET } from "./fixtures.js";

/**
 * The outbox's promise, tested on the process as it runs: a lead answered 202 while NATS is down
 * survives a kill -9 of lead-intake (even in the middle of a burst) and is stored and published,
 * once, in acceptance order, by the next process started on the same OUTBOX_DIR.
 */

const BURST = 120;
const KILL_AFTER = 40;
const WORKERS = 12;

let server: NatsServer;
let dir: string;

beforeAll(async () => {
  server = await startNatsServer();
  dir = mkdtempSync(join(tmpdir(), "outbox-process-"));
});

afterAll(async () => {
  await server?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function spawnIntake(port: number) {
  const service = spawnService({
    service: "lead-intake",
    env: {
      LOG_LEVEL: "info",
      NATS_URL: server.url,
      PORT: String(port),
      HOST: "127.0.0.1",
      API_KEYS,
      FOLLOWUP_HOOK_SECRET: SECRET,
      OUTBOX_DIR: dir,
      RATE_LIMIT_PER_MINUTE: "100000",
    },
  });
  await service.waitForLine((line) => line.includes("lead_intake_started"), 20_000);
  return service;
}

describe("lead-intake killed with -9 while NATS is down", () => {
  it("keeps every lead it answered 202 for and publishes them once, in order, after a restart", async () => {
    await server.stop();
    const port = await freePort();
    const first = await spawnIntake(port);
    const base = `http://127.0.0.1:${port}`;
    const accepted: string[] = [];
    let failed = 0;
    let sent = 0;
    let killed = false;
    try {
      const worker = async () => {
        while (sent < BURST) {
          sent++;
          try {
            const res = await fetch(`${base}/v1/lead`, {
              method: "POST",
              headers: { "content-type": "application/json", "x-api-key": ACME_KEY },
              body: JSON.stringify(ALEX),
            });
            const body = (await res.json()) as { data?: { lead_id: string; queued?: string } };
            expect(res.status).toBe(202);
            expect(body.data?.queued).toBe("local");
            accepted.push(body.data!.lead_id);
          } catch (err) {
            if (!killed) throw err;
            failed++; // in flight at the kill, or sent after it: not acknowledged
          }
          if (!killed && accepted.length >= KILL_AFTER) {
            killed = true;
            first.kill("SIGKILL");
          }
        }
      };
      await Promise.all(Array.from({ length: WORKERS }, worker));
      await first.waitForExit(10_000);
    } finally {
      await first.cleanup();
    }
    expect(killed).toBe(true);
    expect(accepted.length).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(accepted.length + failed).toBe(BURST);

    // On disk: every acknowledged lead, in the order the outbox took them.
    const queuedOrder = readdirSync(dir)
      .map((name) => parseEntryFileName(name))
      .filter((entry) => entry !== null)
      .sort((a, b) => a.seq - b.seq)
      .map((entry) => entry.leadId);
    for (const leadId of accepted) expect(queuedOrder).toContain(leadId);
    // Written but not answered before the kill: at most what was in flight.
    expect(queuedOrder.length - accepted.length).toBeLessThanOrEqual(WORKERS);

    await server.start();
    const second = await spawnIntake(port);
    try {
      await waitFor(
        async () => {
          const res = await fetch(`${base}/ops/followup/queue`, { headers: { "x-api-key": ACME_KEY } });
          const body = (await res.json()) as { enabled: boolean; outbox?: { queued: number } };
          return body.enabled && body.outbox?.queued === 0;
        },
        { description: "the restarted lead-intake to drain its outbox", timeoutMs: 30_000, intervalMs: 200 },
      );
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(
        new RegExp(`lead_intake_outbox_drained_total\\{service="lead-intake"\\} ${queuedOrder.length}\\b`),
      );
      expect(metrics).toMatch(/lead_intake_degraded\{service="lead-intake"\} 0/);
      expect(second.output().join("\n")).toContain("outbox_recovered_entries");

      const nc = await connect({ servers: server.url });
      try {
        const jsm = await jetstreamManager(nc);
        const published: string[] = [];
        const last = (await jsm.streams.info("LEADS")).state.last_seq;
        for (let seq = 1; seq <= last; seq++) {
          const message = await jsm.streams.getMessage("LEADS", { seq });
          published.push(decodeEvent("lead.scored.v1", message!.data).data.lead_id);
        }
        // Each once, in acceptance order; the leads bucket holds every one.
        expect(published).toEqual(queuedOrder);
        const kv = await jsm.streams.info("KV_leads");
        expect(kv.state.messages).toBe(queuedOrder.length);
      } finally {
        await nc.close();
      }
      expect(readdirSync(dir).filter((name) => name.endsWith(".json"))).toEqual([]);

      second.kill("SIGTERM");
      expect((await second.waitForExit(15_000)).code).toBe(0);
    } finally {
      await second.cleanup();
    }
  });
});
