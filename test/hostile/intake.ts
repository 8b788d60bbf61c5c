import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  freePort,
  type ManagedProcess,
  type NatsServer,
  spawnService,
  startNatsServer,
  waitFor,
} from "@followup/nats-harness";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { HOOK_KEY, HOOK_SECRET } from "../support/index.js";

/**
 * lead-intake as it runs (its own process, real HTTP on 127.0.0.1) against a real nats-server,
 * for hostile input: every answer is what a caller on the network would see, and a crash is a
 * process that is gone. Counters read JetStream directly, so "nothing stored, nothing
 * published" is checked where it would show.
 */

export const ACME_KEY = "acme-hostile-key-2b7d91c4";
export const GLOBEX_KEY = "globex-hostile-key-e4a06f13";
export const SECRET = HOOK_SECRET;
export { HOOK_KEY };
export const BODY_LIMIT_BYTES = 16_384;

export interface Counts {
  scored: number;
  outcomes: number;
  leads: number;
  receipts: number;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body, or undefined when it is not JSON. */
  json: unknown;
}

export interface HostileIntake {
  readonly url: string;
  readonly server: NatsServer;
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly process: ManagedProcess;
  /** One request; `body` as bytes or text is sent as-is (with the given content-type only). */
  request(
    method: string,
    path: string,
    options?: { body?: Uint8Array | string; headers?: Record<string, string> },
  ): Promise<RawResponse>;
  counts(): Promise<Counts>;
  /** Throws unless the process still runs and answers /healthz. */
  assertAlive(): Promise<void>;
  close(): Promise<void>;
}

async function subjectCount(jsm: JetStreamManager, stream: string, filter: string): Promise<number> {
  const info = await jsm.streams.info(stream, { subjects_filter: filter });
  return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
}

export async function startHostileIntake(): Promise<HostileIntake> {
  const server = await startNatsServer();
  const outboxDir = mkdtempSync(join(tmpdir(), "hostile-outbox-"));
  const port = await freePort();
  const proc = spawnService({
    service: "lead-intake",
    name: "lead-intake (hostile input)",
    env: {
      NATS_URL: server.url,
      PORT: String(port),
      HOST: "127.0.0.1",
      API_KEYS: `${ACME_KEY}:acme,${GLOBEX_KEY}:globex`,
      FOLLOWUP_HOOK_SECRET: SECRET,
      OUTBOX_DIR: outboxDir,
      BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES),
      // fast-check sends thousands of calls a minute; the limit itself is tested elsewhere.
      RATE_LIMIT_PER_MINUTE: "1000000",
      LOG_LEVEL: "warn",
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const cleanup = async () => {
    await proc.cleanup();
    await server.cleanup();
    rmSync(outboxDir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, {
      description: "lead-intake to be ready",
      timeoutMs: 45_000,
      intervalMs: 100,
    });
  } catch (err) {
    await cleanup();
    throw new Error(`${(err as Error).message}\n${proc.output().slice(-20).join("\n")}`);
  }
  const nc = await connect({ servers: server.url });
  const jsm = await jetstreamManager(nc);
  return {
    url,
    server,
    nc,
    jsm,
    process: proc,
    async request(method, path, options = {}) {
      const body = typeof options.body === "string" ? new TextEncoder().encode(options.body) : options.body;
      const res = await fetch(`${url}${path}`, {
        method,
        headers: options.headers ?? {},
        ...(body !== undefined ? { body } : {}),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, text, json };
    },
    async counts() {
      const [scored, outcomes, leads, receipts] = await Promise.all([
        subjectCount(jsm, "LEADS", "lead.scored.>"),
        subjectCount(jsm, "LEADS", "lead.outcome.>"),
        jsm.streams.info("KV_leads").then((i) => i.state.messages),
        jsm.streams.info("KV_hook_receipts").then((i) => i.state.messages),
      ]);
      return { scored, outcomes, leads, receipts };
    },
    async assertAlive() {
      if (!proc.running) {
        throw new Error(`lead-intake exited:\n${proc.output().slice(-30).join("\n")}`);
      }
      const res = await fetch(`${url}/healthz`);
      if (res.status !== 200) throw new Error(`/healthz answered ${res.status}`);
    },
    async close() {
      await nc.close();
      await cleanup();
    },
  };
}

/** Error-log lines of the process (pino level error or fatal): a 5xx or a bug shows up here. */
export function errorLogs(proc: ManagedProcess): string[] {
  return proc.output().filter((line) => /"level":"(error|fatal)"/.test(line));
}
