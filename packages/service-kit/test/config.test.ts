import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError, commonEnv, env, loadConfig } from "../src/index.js";

const shape = {
  ...commonEnv,
  FOLLOWUP_ENABLED: env.boolean(true),
  FOLLOWUP_RULE_TOP_P: env.number(0.7, { min: 0, max: 1 }),
  PORT: env.port(8000),
  HOOK_URL: env.url("http://127.0.0.1:8000/ops/followup-hook", ["http", "https"]),
  API_KEYS: z.string().min(1, "expected key:tenant pairs"),
};

function problems(vars: Record<string, string>): Record<string, string> {
  try {
    loadConfig(shape, { API_KEYS: "k:t", ...vars });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return Object.fromEntries((err as ConfigError).problems.map((p) => [p.variable, p.message]));
  }
  return {};
}

describe("loadConfig", () => {
  it("applies defaults", () => {
    const config = loadConfig(shape, { API_KEYS: "k:t" });
    expect(config).toMatchObject({
      NATS_URL: "nats://127.0.0.1:4222",
      NATS_REPLICAS: 1,
      LOG_LEVEL: "info",
      FOLLOWUP_ENABLED: true,
      FOLLOWUP_RULE_TOP_P: 0.7,
      PORT: 8000,
    });
  });

  it("parses given values, and treats empty ones as unset", () => {
    const config = loadConfig(shape, {
      API_KEYS: "k:t",
      FOLLOWUP_ENABLED: "off",
      FOLLOWUP_RULE_TOP_P: " 0.5 ",
      PORT: "0",
      LOG_LEVEL: "debug",
      NATS_REPLICAS: "3",
      NATS_URL: "",
    });
    expect(config.FOLLOWUP_ENABLED).toBe(false);
    expect(config.FOLLOWUP_RULE_TOP_P).toBe(0.5);
    expect(config.PORT).toBe(0);
    expect(config.LOG_LEVEL).toBe("debug");
    expect(config.NATS_REPLICAS).toBe(3);
    expect(config.NATS_URL).toBe("nats://127.0.0.1:4222");
  });

  it("names every bad variable, what it expected and what it got", () => {
    const found = problems({
      FOLLOWUP_ENABLED: "maybe",
      FOLLOWUP_RULE_TOP_P: "1.5",
      PORT: "80.5",
      LOG_LEVEL: "loud",
      HOOK_URL: "ftp://x",
      NATS_REPLICAS: "two",
    });
    expect(found.FOLLOWUP_ENABLED).toMatch(/expected true or false.*got "maybe"/);
    expect(found.FOLLOWUP_RULE_TOP_P).toMatch(/expected a number from 0 to 1.*got "1.5"/);
    expect(found.PORT).toMatch(/expected an integer from 0 to 65535.*got "80.5"/);
    expect(found.LOG_LEVEL).toMatch(
      /expected one of fatal, error, warn, info, debug, trace, silent.*got "loud"/,
    );
    expect(found.HOOK_URL).toMatch(/expected a URL starting with http:\/\/ or https:\/\//);
    expect(found.NATS_REPLICAS).toMatch(/expected an integer from 1 to 5/);
  });

  it("says when a required variable is missing, and never prints a secret", () => {
    try {
      loadConfig({ API_KEYS: z.string().min(4, "expected key:tenant pairs") }, { API_KEYS: "k:t" });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toContain('API_KEYS: expected key:tenant pairs; got "<redacted>"');
      expect((err as Error).message).not.toContain("k:t");
    }
    try {
      loadConfig({ API_KEYS: z.string() }, {});
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toContain("API_KEYS");
      expect((err as Error).message).toContain("it is not set");
    }
  });

  it("reads a broker identity's inbox prefix and whether to provision, naming what is wrong", () => {
    expect(loadConfig(shape, { API_KEYS: "k:t" })).toMatchObject({ NATS_PROVISION: true });
    expect(
      loadConfig(shape, { API_KEYS: "k:t", NATS_PROVISION: "false", NATS_INBOX_PREFIX: "_INBOX.scheduler" }),
    ).toMatchObject({ NATS_PROVISION: false, NATS_INBOX_PREFIX: "_INBOX.scheduler" });
    const found = problems({ NATS_PROVISION: "maybe", NATS_INBOX_PREFIX: "_INBOX.>" });
    expect(found.NATS_PROVISION).toMatch(/expected true or false/);
    expect(found.NATS_INBOX_PREFIX).toMatch(/without spaces or wildcards; got "_INBOX.>"/);
  });

  it("reads a queue name and a webhook secret, naming what is wrong with either", () => {
    const shape = { FOLLOWUP_QUEUE: env.queue(), FOLLOWUP_HOOK_SECRET: env.webhookSecret() };
    const secret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
    const ok = loadConfig(shape, { FOLLOWUP_HOOK_SECRET: secret });
    expect(ok.FOLLOWUP_QUEUE).toBe("followups");
    expect(ok.FOLLOWUP_HOOK_SECRET).toEqual(Buffer.alloc(32, 7));

    const bad = (vars: Record<string, string>) => {
      try {
        loadConfig(shape, vars);
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error("expected a ConfigError");
    };
    const wrong = bad({ FOLLOWUP_QUEUE: "follow.ups", FOLLOWUP_HOOK_SECRET: "not-a-secret" });
    expect(wrong).toMatch(/FOLLOWUP_QUEUE: expected 1-32 characters.*got "follow.ups"/);
    expect(wrong).toMatch(/FOLLOWUP_HOOK_SECRET: expected whsec_ followed by base64.*got "<redacted>"/);
    expect(wrong).not.toContain("not-a-secret");
    expect(bad({ FOLLOWUP_HOOK_SECRET: `whsec_${Buffer.alloc(8).toString("base64")}` })).toMatch(
      /FOLLOWUP_HOOK_SECRET: expected a key of at least 24 bytes/,
    );
  });
});
