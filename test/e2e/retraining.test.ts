// Retraining from real outcomes, end to end: two lead-intake copies as their broker identity,
// leads and outcomes through the API, train:outcomes run as a command (the lead-intake identity),
// a promotion every copy picks up through its watch, then noise that the guard refuses, then a
// rollback. Outcomes depend on one known feature: a lead asking for a quote books far more often.

import { type LeadScored, subjects, topology } from "@followup/contracts";
import { REPO_ROOT, spawnProcess, waitFor } from "@followup/nats-harness";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "../../services/lead-intake/scripts/dataset.js";
import { type Engine, startEngine, TENANTS } from "../support/index.js";

const HORIZON = "4s";
const HORIZON_MS = 4_000;
const SIGNAL_LEADS = 2_000;
const NOISE_LEADS = 800;
const FILLER = [
  "garden",
  "window",
  "kitchen",
  "roof",
  "fence",
  "door",
  "floor",
  "paint",
  "tile",
  "wall",
  "yard",
  "deck",
];
const KEY = TENANTS.acme.apiKey;
const OPERATOR_KEY = TENANTS.globex.apiKey;

let engine: Engine;
let admin: NatsConnection;

beforeAll(async () => {
  engine = await startEngine({
    copies: { "lead-intake": 2, scheduler: 0, dispatcher: 0, reports: 0 },
    serviceEnv: { "lead-intake": { MODEL_OPERATOR_TENANTS: TENANTS.globex.tenant } },
  });
  admin = await connect({ servers: engine.natsUrl, ...engine.as() });
}, 90_000);

afterAll(async () => {
  await admin?.close();
  await engine?.stop();
});

const copy = (i: number) => engine.services["lead-intake"][i]!.url;

async function api(base: string, method: string, path: string, body?: unknown, key: string = KEY) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { "x-api-key": key, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as { ok: boolean; data: Record<string, unknown> } };
}

/**
 * Feeds `n` leads through copy 1 and records each one's outcome at once (well within H):
 * `booked(quote)` decides, from a seeded generator, whether the lead books.
 */
async function feed(
  n: number,
  seed: number,
  booked: (quote: boolean, draw: number) => boolean,
): Promise<void> {
  const rng = mulberry32(seed);
  const leads = Array.from({ length: n }, () => {
    const quote = rng() < 0.5;
    const words = Array.from(
      { length: 1 + Math.floor(rng() * 25) },
      () => FILLER[Math.floor(rng() * FILLER.length)],
    );
    return {
      quote,
      draw: rng(),
      ghost: rng() < 0.5,
      details: `${quote ? "I would like a quote for the" : "A question about the"} ${words.join(" ")}`,
    };
  });
  let next = 0;
  const worker = async () => {
    while (next < leads.length) {
      const lead = leads[next++]!;
      const created = await api(copy(0), "POST", "/v1/lead", {
        name: "Sam Lee",
        phone: "+15555550100",
        details: lead.details,
      });
      expect(created.status).toBe(200);
      const id = created.body.data.lead_id as string;
      const outcome = booked(lead.quote, lead.draw) ? "booked" : lead.ghost ? "ghosted" : null;
      if (outcome !== null) {
        expect((await api(copy(0), "POST", `/v1/lead/${id}/outcome`, { outcome })).status).toBeLessThan(300);
      }
    }
  };
  await Promise.all(Array.from({ length: 12 }, worker));
}

/** train:outcomes as the package script runs it, as the lead-intake identity. */
async function train(...args: string[]): Promise<{ code: number | null; output: string }> {
  const run = spawnProcess({
    name: "train:outcomes",
    command: process.execPath,
    args: [
      "--import",
      "tsx",
      "services/lead-intake/scripts/train-outcomes.ts",
      "--horizon",
      HORIZON,
      ...args,
    ],
    cwd: REPO_ROOT,
    env: { NATS_URL: engine.natsUrl, ...engine.broker!.envOf("lead-intake"), LOG_LEVEL: "warn" },
  });
  const status = await run.waitForExit(60_000);
  return { code: status.code, output: run.output().join("\n") };
}

async function scoredVersion(base: string): Promise<string> {
  const created = await api(base, "POST", "/v1/lead", {
    name: "Kim Park",
    phone: "+15555550101",
    details: "a quote please",
  });
  const id = created.body.data.lead_id as string;
  const jsm = await jetstreamManager(admin);
  const stored = await jsm.direct.getMessage(topology().streams.leads.name, {
    last_by_subj: subjects.leadScored(TENANTS.acme.tenant, id),
  });
  return (stored!.json() as LeadScored).data.model_version;
}

const serving = async (i: number) => (await api(copy(i), "GET", "/ops/model")).body.data.serving as string;

describe("retraining from outcomes", () => {
  let committed: string;
  let promoted: string;

  it("says how many more labelled leads it needs, then promotes a model that learned the feature", async () => {
    committed = await serving(1);
    await feed(SIGNAL_LEADS, 7, (quote, draw) => draw < (quote ? 0.7 : 0.1));
    // Every lead must be older than H to be labelled.
    await new Promise((resolve) => setTimeout(resolve, HORIZON_MS + 500));

    const tooFew = await train("--min-labelled", "100000");
    expect(tooFew.code, tooFew.output).toBe(3);
    expect(tooFew.output).toMatch(/at least 100000 .* needed: \d+ more/);

    const run = await train("--min-labelled", "1000");
    expect(run.code, run.output).toBe(0);
    const match = /^(conversion-lr-[0-9a-f]+): test AUC ([\d.]+), Brier ([\d.]+)/m.exec(run.output);
    expect(match, run.output).not.toBeNull();
    promoted = match![1]!;
    expect(Number(match![2])).toBeGreaterThan(0.72);
    expect(run.output).toContain("calibration (decile");
    expect(run.output).toContain(`promoted ${promoted}`);

    // The second copy picks it up from its watch, without a restart, and lead.scored says so.
    await waitFor(async () => (await serving(1)) === promoted, {
      description: "the second lead-intake copy to score with the promoted model",
      timeoutMs: 15_000,
    });
    expect(await scoredVersion(copy(1))).toBe(promoted);
    const status = (await api(copy(1), "GET", "/ops/model")).body.data;
    expect(status).toMatchObject({ current: promoted, previous: [null] });
    expect((status.evaluation as { n_test: number }).n_test).toBe(Math.round(SIGNAL_LEADS * 0.2));
  }, 120_000);

  it("refuses the next model when the newest outcomes are noise, and rolls back to the committed model", async () => {
    await feed(NOISE_LEADS, 11, (_quote, draw) => draw < 0.3);
    await new Promise((resolve) => setTimeout(resolve, HORIZON_MS + 500));
    const run = await train("--min-labelled", "1000");
    expect(run.code, run.output).toBe(1);
    expect(run.output).toMatch(/refused: test AUC 0\.[0-6]\d* is below the minimum 0\.65/);
    expect(await serving(0)).toBe(promoted);

    expect((await api(copy(0), "POST", "/ops/model/rollback", undefined)).status).toBe(403);
    const rolled = await api(copy(0), "POST", "/ops/model/rollback", undefined, OPERATOR_KEY);
    expect(rolled.body.data).toEqual({ from: promoted, to: null });
    await waitFor(async () => (await serving(1)) === committed, {
      description: "the second copy to return to the committed model",
      timeoutMs: 15_000,
    });
    expect(await scoredVersion(copy(1))).toBe(committed);
  }, 120_000);
});
