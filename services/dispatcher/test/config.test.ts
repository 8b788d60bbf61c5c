import { EXIT_CONFIG } from "@followup/service-kit";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_HOOK_URL, loadDispatcherConfig } from "../src/config.js";
import { SECRET, spawnDispatcher } from "./fixtures.js";

describe("dispatcher configuration", () => {
  it("has the documented defaults", () => {
    const config = loadDispatcherConfig({ FOLLOWUP_HOOK_SECRET: SECRET });
    expect(config).toMatchObject({
      FOLLOWUP_HOOK_URL: DEFAULT_HOOK_URL,
      FOLLOWUP_QUEUE: "followups",
      FOLLOWUP_MAX_ATTEMPTS: 8,
      FOLLOWUP_RETRY_BASE_MS: 1_000,
      FOLLOWUP_RETRY_MAX_MS: 300_000,
      FOLLOWUP_HOOK_TIMEOUT_MS: 10_000,
      DISPATCH_CONCURRENCY: 64,
      HOOK_CONCURRENCY: 32,
      FOLLOWUP_CHANNEL: "hook",
      MARKER_CONCURRENCY: 250,
      RESULT_BATCH_WINDOW_MS: 25,
      DISPATCH_SHUTDOWN_GRACE_MS: 20_000,
      PORT: 8002,
      HOST: "0.0.0.0",
    });
    expect(DEFAULT_HOOK_URL).toBe("http://127.0.0.1:8000/ops/followup-hook");
  });

  it("requires FOLLOWUP_HOOK_SECRET in Standard Webhooks form, naming it and never echoing it", () => {
    expect(() => loadDispatcherConfig({})).toThrow(/FOLLOWUP_HOOK_SECRET: .*it is not set/);
    const bad = "whsec_not*base64";
    try {
      loadDispatcherConfig({ FOLLOWUP_HOOK_SECRET: bad });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toMatch(/FOLLOWUP_HOOK_SECRET: expected whsec_ followed by base64/);
      expect((err as Error).message).not.toContain(bad);
    }
    expect(() =>
      loadDispatcherConfig({ FOLLOWUP_HOOK_SECRET: `whsec_${Buffer.alloc(8).toString("base64")}` }),
    ).toThrow(/FOLLOWUP_HOOK_SECRET: expected a key of at least 24 bytes/);
  });

  it("refuses values out of range, naming each variable", () => {
    const run = (env: Record<string, string>) => () =>
      loadDispatcherConfig({ FOLLOWUP_HOOK_SECRET: SECRET, ...env });
    expect(run({ DISPATCH_CONCURRENCY: "257" })).toThrow(
      /DISPATCH_CONCURRENCY: expected an integer from 1 to 256/,
    );
    expect(run({ FOLLOWUP_MAX_ATTEMPTS: "0" })).toThrow(/FOLLOWUP_MAX_ATTEMPTS/);
    expect(run({ FOLLOWUP_HOOK_URL: "ftp://x" })).toThrow(
      /FOLLOWUP_HOOK_URL: expected a URL starting with http/,
    );
    expect(run({ FOLLOWUP_QUEUE: "a.b" })).toThrow(/FOLLOWUP_QUEUE/);
    expect(run({ FOLLOWUP_CHANNEL: "sms!" })).toThrow(/FOLLOWUP_CHANNEL: expected 1-64 characters/);
    expect(run({ MARKER_CONCURRENCY: "5000" })).toThrow(
      /MARKER_CONCURRENCY: expected an integer from 1 to 2000/,
    );
    expect(run({ RESULT_BATCH_WINDOW_MS: "-1" })).toThrow(/RESULT_BATCH_WINDOW_MS/);
    expect(run({ FOLLOWUP_RETRY_BASE_MS: "5000", FOLLOWUP_RETRY_MAX_MS: "1000" })).toThrow(
      /FOLLOWUP_RETRY_BASE_MS: expected at most FOLLOWUP_RETRY_MAX_MS \(1000\); got 5000/,
    );
  });
});

describe("dispatcher start-up with a bad configuration (child process)", () => {
  const started: ReturnType<typeof spawnDispatcher>[] = [];
  afterAll(async () => {
    await Promise.all(started.map((p) => p.cleanup()));
  });

  it("exits with EX_CONFIG and a message naming the variable", async () => {
    const p = spawnDispatcher("dispatcher-bad-config", {
      FOLLOWUP_HOOK_SECRET: "",
      NATS_URL: "nats://127.0.0.1:1",
    });
    started.push(p);
    const exit = await p.waitForExit(20_000);
    expect(exit.code).toBe(EXIT_CONFIG);
    expect(p.output().join("\n")).toMatch(/dispatcher: invalid configuration:\n\s+FOLLOWUP_HOOK_SECRET: /);
  });
});
