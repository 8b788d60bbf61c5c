import { ConfigError, parseApiKeys } from "@followup/service-kit";
import { describe, expect, it, vi } from "vitest";
import { ApiKeys } from "../src/auth.js";
import { loadLeadIntakeConfig } from "../src/config.js";

// The real comparison, observed: a lookup must compare fixed-length digests against every key.
const { compared } = vi.hoisted(() => ({
  compared: vi.fn<(a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => void>(),
}));
vi.mock("node:crypto", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:crypto")>();
  return {
    ...actual,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compared(a, b);
      return actual.timingSafeEqual(a, b);
    },
  };
});

describe("parseApiKeys (API_KEYS=key:tenant,...)", () => {
  it("reads pairs, trimming blanks around them", () => {
    expect(parseApiKeys(" k1:acme , k2:globex-2 ")).toEqual({
      entries: [
        { key: "k1", tenant: "acme" },
        { key: "k2", tenant: "globex-2" },
      ],
      problems: [],
    });
  });

  it("splits at the last ':' so a key may contain one", () => {
    expect(parseApiKeys("a:b:acme").entries).toEqual([{ key: "a:b", tenant: "acme" }]);
  });

  it.each([
    ["", "pair 1 is empty"],
    ["k1:acme,", "pair 2 is empty"],
    ["k1:acme,,k2:b", "pair 2 is empty"],
    ["just-a-key", "pair 1 has no ':'"],
    [":acme", "pair 1 has an empty key"],
    ["k1:", "pair 1: the tenant must be"],
    ["k1:ac me", "pair 1: the tenant must be"],
    ["k1:acme.eu", "pair 1: the tenant must be"],
    [`k1:${"t".repeat(65)}`, "pair 1: the tenant must be"],
    ["k1:acme,k1:globex", "pair 2 repeats the key of an earlier pair"],
  ])("refuses %j: %s", (raw, problem) => {
    const { problems } = parseApiKeys(raw);
    expect(problems.join("\n")).toContain(problem);
  });

  it("never names the key itself in a problem", () => {
    const secret = "sk_live_SECRET_1234567890";
    const { problems } = parseApiKeys(`${secret}:bad tenant,${secret}:acme,${secret}:acme`);
    expect(problems.length).toBeGreaterThan(0);
    for (const problem of problems) expect(problem).not.toContain("SECRET");
  });
});

describe("loadLeadIntakeConfig", () => {
  it("requires API_KEYS and names it without printing its value", () => {
    expect(() => loadLeadIntakeConfig({})).toThrow(ConfigError);
    try {
      loadLeadIntakeConfig({ API_KEYS: "sk_SECRET_value:bad tenant" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as ConfigError).message;
      expect(message).toContain("API_KEYS");
      expect(message).toContain("pair 1: the tenant must be");
      expect(message).not.toContain("SECRET");
    }
  });

  it("has the documented defaults", () => {
    const config = loadLeadIntakeConfig({ API_KEYS: "k:acme" });
    expect(config).toMatchObject({
      PORT: 8000,
      HOST: "0.0.0.0",
      FOLLOWUP_ENABLED: true,
      FOLLOWUP_QUEUE: "followups",
      BODY_LIMIT_BYTES: 16_384,
      RATE_LIMIT_PER_MINUTE: 600,
      PUBLISH_TIMEOUT_MS: 5000,
      NATS_URL: "nats://127.0.0.1:4222",
      LOG_LEVEL: "info",
    });
    expect(config.FOLLOWUP_HOOK_SECRET).toBeUndefined();
    expect(config.API_KEYS).toEqual([{ key: "k", tenant: "acme" }]);
  });

  it.each([
    ["FOLLOWUP_HOOK_SECRET", "not-a-secret", "whsec_"],
    ["BODY_LIMIT_BYTES", "12", "from 1024"],
    ["RATE_LIMIT_PER_MINUTE", "0", "from 1"],
    ["PUBLISH_TIMEOUT_MS", "fast", "an integer"],
    ["FOLLOWUP_QUEUE", "follow ups", "1-32 characters"],
    ["FOLLOWUP_ENABLED", "maybe", "true or false"],
  ])("refuses %s=%j naming what it expected", (variable, value, expected) => {
    expect(() => loadLeadIntakeConfig({ API_KEYS: "k:acme", [variable]: value })).toThrow(
      new RegExp(`${variable}: .*${expected}`),
    );
  });

  it("decodes FOLLOWUP_HOOK_SECRET into the signing key", () => {
    const secret = `whsec_${Buffer.alloc(32, 1).toString("base64")}`;
    const config = loadLeadIntakeConfig({ API_KEYS: "k:acme", FOLLOWUP_HOOK_SECRET: secret });
    expect(config.FOLLOWUP_HOOK_SECRET).toEqual(Buffer.alloc(32, 1));
  });
});

describe("ApiKeys", () => {
  const keys = new ApiKeys([
    { key: "key-one", tenant: "acme" },
    { key: "key-two", tenant: "globex" },
    { key: "key-three", tenant: "acme" },
  ]);

  it("finds the tenant and the key's position", () => {
    expect(keys.lookup("key-one")).toEqual({ tenant: "acme", keyId: 0 });
    expect(keys.lookup("key-two")).toEqual({ tenant: "globex", keyId: 1 });
    expect(keys.lookup("key-three")).toEqual({ tenant: "acme", keyId: 2 });
  });

  it.each([
    ["missing", undefined],
    ["empty", ""],
    ["wrong", "key-four"],
    ["a prefix", "key-on"],
    ["longer", "key-one-and-more"],
    ["other case", "KEY-ONE"],
    ["repeated header", ["key-one", "key-one"]],
  ])("refuses a %s key", (_what, given) => {
    expect(keys.lookup(given)).toBeNull();
  });

  it("compares keys of any length without throwing (hashed to a fixed length first)", () => {
    expect(keys.lookup("x".repeat(10_000))).toBeNull();
    expect(keys.lookup("é")).toBeNull();
  });

  it("compares the given key with every configured key in constant time, with no early exit", () => {
    for (const given of ["key-one", "key-three", "wrong"]) {
      compared.mockClear();
      keys.lookup(given);
      expect(compared).toHaveBeenCalledTimes(3);
      for (const [a, b] of compared.mock.calls) {
        expect(a.byteLength).toBe(32);
        expect(b.byteLength).toBe(32);
      }
    }
  });

  it("needs at least one key", () => {
    expect(() => new ApiKeys([])).toThrow();
  });
});
