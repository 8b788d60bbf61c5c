import { randomBytes } from "node:crypto";
import { ChannelList, ChannelSettingsRecord, ChannelView } from "@followup/contracts";
import type { NatsServer } from "@followup/nats-harness";
import { ConfigError, sealingKeyId } from "@followup/service-kit";
import { type KV, Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadLeadIntakeConfig } from "../src/config.js";
import {
  API_KEYS,
  type ApiCall,
  apiCall,
  expectFieldRefused,
  GLOBEX_KEY,
  type Intake,
  startIntake,
  startIntakeWithServer,
  stopIntakeWithServer,
} from "./fixtures.js";

const OLD_KEY = randomBytes(32).toString("base64");
const NEW_KEY = randomBytes(32).toString("base64");
const NOW = new Date("2026-03-02T15:04:05.000Z");

let server: NatsServer;
let intake: Intake;
let bucket: KV;
/** Every body any app of this file answered, as text: no secret may be in one. */
const answered: string[] = [];
const opened: Intake[] = [];

beforeAll(async () => {
  ({ server, intake } = await startIntakeWithServer({
    now: () => NOW,
    env: { CHANNEL_SECRETS_KEY: OLD_KEY },
  }));
  bucket = await new Kvm(intake.nc!).open("channel_settings");
});

afterAll(async () => {
  for (const other of opened) await other.close();
  await stopIntakeWithServer(intake, server);
});

async function another(env: Record<string, string>): Promise<Intake> {
  const started = await startIntake({ server, now: () => NOW, env });
  opened.push(started);
  return started;
}

async function call(
  method: "GET" | "PUT" | "DELETE",
  url: string,
  options: Parameters<typeof apiCall>[3] = {},
  app = intake,
): Promise<ApiCall> {
  const res = await apiCall(app.app, method, url, options);
  answered.push(JSON.stringify(res.body), res.etag ?? "");
  return res;
}

const AUTH_TOKEN = "f3c1a9e0b7d24c6e8a5b1c9d0e2f7a41";
const SID = `AC${"a1".repeat(16)}`;
const SMS = { provider: "twilio", account_sid: SID, auth_token: AUTH_TOKEN, from: "+14155552671" };
const SENDGRID_KEY = "SG.secret-sendgrid-key-9b1e4c7a22";
const EMAIL = { provider: "sendgrid", api_key: SENDGRID_KEY, from: "hello@acme.example" };
const SLACK_URL = "https://hooks.slack.com/services/T000/B000/slacksecretXYZ7";
const HOOK_SECRET = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
const SECRETS = [AUTH_TOKEN, SENDGRID_KEY, SLACK_URL, HOOK_SECRET, "short-pw1"];

const view = (c: ApiCall) => ChannelView.parse(c.body.data);

async function rawValue(tenant: string, channel: string): Promise<string | null> {
  const entry = await bucket.get(`${tenant}.${channel}`);
  return entry === null || entry.operation !== "PUT" ? null : entry.string();
}

describe("/v1/channels against a real nats-server", () => {
  it("stores sms settings (201), answering them masked with the revision as ETag; GET reads the same", async () => {
    const created = await call("PUT", "/v1/channels/sms", { body: SMS });
    expect(created.status).toBe(201);
    const data = view(created);
    expect(data).toEqual({
      name: "sms",
      updated_at: NOW.toISOString(),
      settings: { provider: "twilio", account_sid: SID, from: "+14155552671", auth_token: "****7a41" },
      sealed_with_current_key: true,
      revision: data.revision,
    });
    expect(created.etag).toBe(`"${data.revision}"`);
    const read = await call("GET", "/v1/channels/sms");
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual(created.body.data);
    expect(read.etag).toBe(created.etag);
  });

  it("keeps secrets sealed in the bucket and the rest readable", async () => {
    await call("PUT", "/v1/channels/email", { body: EMAIL });
    await call("PUT", "/v1/channels/slack", { body: { webhook_url: SLACK_URL } });
    await call("PUT", "/v1/channels/hook", {
      body: { url: "https://crm.acme.example/followups", secret: HOOK_SECRET },
    });
    await call("PUT", "/v1/channels/sms", { body: SMS });
    for (const channel of ["sms", "email", "slack", "hook"]) {
      const raw = await rawValue("acme", channel);
      expect(raw, channel).not.toBeNull();
      for (const secret of SECRETS) expect(raw, channel).not.toContain(secret);
      expect(raw).not.toContain(Buffer.from(AUTH_TOKEN).toString("base64"));
      const record = ChannelSettingsRecord.parse(JSON.parse(raw!));
      expect(Object.keys(record.secrets).length, channel).toBe(1);
      for (const sealed of Object.values(record.secrets)) {
        expect(sealed.kid).toBe(sealingKeyId(Buffer.from(OLD_KEY, "base64")));
        expect(Buffer.from(sealed.iv, "base64url")).toHaveLength(12);
      }
    }
    const sms = ChannelSettingsRecord.parse(JSON.parse((await rawValue("acme", "sms"))!));
    expect(sms.settings).toEqual({ provider: "twilio", account_sid: SID, from: "+14155552671" });
    // A fresh IV each time: the same secret sealed twice differs.
    const again = await call("PUT", "/v1/channels/sms", { body: SMS });
    expect(again.status).toBe(200);
    const resealed = ChannelSettingsRecord.parse(JSON.parse((await rawValue("acme", "sms"))!));
    expect(resealed.secrets.auth_token!.data).not.toBe(sms.secrets.auth_token!.data);
  });

  it("masks every secret: the last four characters, or all of a short one", async () => {
    const smtp = await call("PUT", "/v1/channels/email", {
      body: {
        provider: "smtp",
        host: "smtp.acme.example",
        port: 587,
        secure: false,
        user: "mailer",
        pass: "short-pw1",
        from: "hello@acme.example",
      },
    });
    expect(smtp.status).toBe(200);
    expect(view(smtp).settings).toMatchObject({
      provider: "smtp",
      host: "smtp.acme.example",
      port: 587,
      pass: "****",
    });
    const slack = view(await call("GET", "/v1/channels/slack"));
    expect(slack.settings).toEqual({ webhook_url: "****XYZ7" });
    const hook = view(await call("GET", "/v1/channels/hook"));
    expect(hook.settings).toEqual({
      url: "https://crm.acme.example/followups",
      secret: `****${HOOK_SECRET.slice(-4)}`,
    });
  });

  it("lists the tenant's channels, by name, and only the tenant's", async () => {
    await call("PUT", "/v1/channels/slack", { body: { webhook_url: SLACK_URL } });
    const listed = ChannelList.parse((await call("GET", "/v1/channels")).body.data);
    expect(listed.channels.map((c) => c.name)).toEqual(["email", "hook", "slack", "sms"]);
    expect(listed.count).toBe(4);
    const globex = ChannelList.parse((await call("GET", "/v1/channels", { key: GLOBEX_KEY })).body.data);
    expect(globex.channels.map((c) => c.name)).not.toContain("sms");
  });

  it("If-Match: a stale revision is 412 and changes nothing; the current one replaces", async () => {
    const first = view(await call("PUT", "/v1/channels/slack", { body: { webhook_url: SLACK_URL } }));
    const second = view(
      await call("PUT", "/v1/channels/slack", {
        body: { webhook_url: SLACK_URL },
        ifMatch: `"${first.revision}"`,
      }),
    );
    expect(second.revision).toBeGreaterThan(first.revision);
    const stale = await call("PUT", "/v1/channels/slack", {
      body: { webhook_url: "https://hooks.slack.com/services/T1/B1/other" },
      ifMatch: `"${first.revision}"`,
    });
    expect(stale.status).toBe(412);
    expect(stale.body.error?.code).toBe("revision_mismatch");
    expect(view(await call("GET", "/v1/channels/slack")).revision).toBe(second.revision);
    const staleDelete = await call("DELETE", "/v1/channels/slack", { ifMatch: String(first.revision) });
    expect(staleDelete.status).toBe(412);
  });

  it("another tenant's channel is not found, and its DELETE deletes nothing", async () => {
    expect(
      (
        await call("PUT", "/v1/channels/hook", {
          body: { url: "https://crm.acme.example/x", secret: HOOK_SECRET },
        })
      ).status,
    ).toBe(200);
    expect((await call("GET", "/v1/channels/hook", { key: GLOBEX_KEY })).status).toBe(404);
    expect((await call("DELETE", "/v1/channels/hook", { key: GLOBEX_KEY })).status).toBe(404);
    expect((await call("GET", "/v1/channels/hook")).status).toBe(200);
    expect(await rawValue("globex", "hook")).toBeNull();
  });

  it("deletes: then not found, not listed, and PUT creates it again (201)", async () => {
    await call("PUT", "/v1/channels/hook", {
      body: { url: "https://crm.acme.example/x", secret: HOOK_SECRET },
      key: GLOBEX_KEY,
    });
    const deleted = await call("DELETE", "/v1/channels/hook", { key: GLOBEX_KEY });
    expect(deleted.status).toBe(200);
    expect(deleted.body.data).toEqual({ name: "hook", deleted: true });
    expect((await call("GET", "/v1/channels/hook", { key: GLOBEX_KEY })).status).toBe(404);
    expect(await rawValue("globex", "hook")).toBeNull();
    expect((await call("DELETE", "/v1/channels/hook", { key: GLOBEX_KEY })).status).toBe(404);
    const listed = ChannelList.parse((await call("GET", "/v1/channels", { key: GLOBEX_KEY })).body.data);
    expect(listed.channels.map((c) => c.name)).not.toContain("hook");
    expect(
      (
        await call("PUT", "/v1/channels/hook", {
          body: { url: "https://crm.acme.example/x", secret: HOOK_SECRET },
          key: GLOBEX_KEY,
        })
      ).status,
    ).toBe(201);
  });

  it("an unknown channel is 400 naming channel; one without a PUT route is 404", async () => {
    const bad = await call("GET", "/v1/channels/fax");
    expectFieldRefused(bad, "channel", "must be one of");
    expect((await call("PUT", "/v1/channels/fax", { body: SMS })).status).toBe(404);
  });

  const MG = `MG${"0f".repeat(16)}`;
  const cases: [string, string, string, unknown, string | RegExp][] = [
    ["sms", "provider", "provider", { ...SMS, provider: "vonage" }, "twilio"],
    ["sms", "account_sid", "account_sid", { ...SMS, account_sid: "AC123" }, "AC followed by 32 hex digits"],
    ["sms", "from not E.164", "from", { ...SMS, from: "415-555-2671" }, "E.164"],
    ["sms", "from and messaging_service_sid", "from", { ...SMS, messaging_service_sid: MG }, "exactly one"],
    [
      "sms",
      "neither sender",
      "from",
      { provider: "twilio", account_sid: SID, auth_token: AUTH_TOKEN },
      "exactly one",
    ],
    [
      "sms",
      "messaging_service_sid",
      "messaging_service_sid",
      { provider: "twilio", account_sid: SID, auth_token: AUTH_TOKEN, messaging_service_sid: "MG12" },
      "MG followed by 32 hex digits",
    ],
    [
      "sms",
      "no credentials",
      "auth_token",
      { provider: "twilio", account_sid: SID, from: "+14155552671" },
      "api_key_sid",
    ],
    [
      "sms",
      "api key half",
      "api_key_secret",
      { provider: "twilio", account_sid: SID, api_key_sid: `SK${"0".repeat(32)}`, from: "+14155552671" },
      "together",
    ],
    ["sms", "unknown field", "(root)", { ...SMS, auth_tokn: "x" }, "auth_tokn"],
    ["email", "provider", "provider", { ...EMAIL, provider: "mailgun" }, /sendgrid/],
    ["email", "from", "from", { ...EMAIL, from: "not an address" }, "e-mail address"],
    ["email", "reply_to", "reply_to", { ...EMAIL, reply_to: "nobody" }, "e-mail address"],
    ["email", "api_key", "api_key", { provider: "sendgrid", from: "hello@acme.example" }, ""],
    [
      "email",
      "smtp port",
      "port",
      { provider: "smtp", host: "smtp.acme.example", port: 70000, secure: true, from: "a@acme.example" },
      "",
    ],
    [
      "email",
      "smtp user without pass",
      "pass",
      {
        provider: "smtp",
        host: "smtp.acme.example",
        port: 465,
        secure: true,
        user: "u",
        from: "a@acme.example",
      },
      "together",
    ],
    [
      "slack",
      "http webhook",
      "webhook_url",
      { webhook_url: "http://hooks.slack.com/services/x" },
      "https URL",
    ],
    ["slack", "not a URL", "webhook_url", { webhook_url: "hooks.slack.com" }, "https URL"],
    ["hook", "http url", "url", { url: "http://crm.acme.example/x", secret: HOOK_SECRET }, "https URL"],
    [
      "hook",
      "secret form",
      "secret",
      { url: "https://crm.acme.example/x", secret: "plain-secret-value" },
      "whsec_",
    ],
    [
      "hook",
      "short secret",
      "secret",
      { url: "https://crm.acme.example/x", secret: `whsec_${Buffer.alloc(8).toString("base64")}` },
      "24 bytes",
    ],
  ];
  it.each(cases)("%s: %s is 400 naming %s", async (channel, _case, field, body, rule) => {
    const before = await rawValue("globex", channel);
    const res = await call("PUT", `/v1/channels/${channel}`, { body, key: GLOBEX_KEY });
    expectFieldRefused(res, field, rule);
    expect(await rawValue("globex", channel)).toBe(before);
  });

  it("a changed byte of a sealed secret fails the read closed: 500, logged, nothing shown", async () => {
    await call("PUT", "/v1/channels/sms", { body: SMS, key: GLOBEX_KEY });
    const record = JSON.parse((await rawValue("globex", "sms"))!);
    const data = Buffer.from(record.secrets.auth_token.data, "base64url");
    data[0] = data[0]! ^ 1;
    record.secrets.auth_token.data = data.toString("base64url");
    await bucket.put("globex.sms", JSON.stringify(record));
    const read = await call("GET", "/v1/channels/sms", { key: GLOBEX_KEY });
    expect(read.status).toBe(500);
    expect(read.body.error?.message).toContain("auth_token");
    expect(read.body.data).toBeUndefined();
    expect((await call("GET", "/v1/channels", { key: GLOBEX_KEY })).status).toBe(500);
    expect(
      intake.logs.some(
        (line) => line.includes("channel_secret_unreadable") && line.includes('"field":"auth_token"'),
      ),
    ).toBe(true);
    // A PUT replaces it, sealed afresh.
    expect((await call("PUT", "/v1/channels/sms", { body: SMS, key: GLOBEX_KEY })).status).toBe(200);
    expect((await call("GET", "/v1/channels/sms", { key: GLOBEX_KEY })).status).toBe(200);
  });

  it("a sealed secret copied into another tenant's record does not open there", async () => {
    await call("PUT", "/v1/channels/sms", { body: SMS, key: GLOBEX_KEY });
    const acme = JSON.parse((await rawValue("acme", "sms"))!);
    const globex = JSON.parse((await rawValue("globex", "sms"))!);
    globex.secrets = acme.secrets;
    await bucket.put("globex.sms", JSON.stringify(globex));
    expect((await call("GET", "/v1/channels/sms", { key: GLOBEX_KEY })).status).toBe(500);
    await call("PUT", "/v1/channels/sms", { body: SMS, key: GLOBEX_KEY });
  });

  it("rotation: the old key still opens, the next PUT seals under the new one; without the old key it fails closed", async () => {
    const rotated = await another({ CHANNEL_SECRETS_KEY: NEW_KEY, CHANNEL_SECRETS_KEYS_OLD: ` ${OLD_KEY} ` });
    const before = await call("GET", "/v1/channels/sms", {}, rotated);
    expect(before.status).toBe(200);
    expect(view(before).sealed_with_current_key).toBe(false);
    expect(view(before).settings.auth_token).toBe("****7a41");
    const put = await call("PUT", "/v1/channels/sms", { body: SMS }, rotated);
    expect(view(put).sealed_with_current_key).toBe(true);
    const record = ChannelSettingsRecord.parse(JSON.parse((await rawValue("acme", "sms"))!));
    expect(record.secrets.auth_token!.kid).toBe(sealingKeyId(Buffer.from(NEW_KEY, "base64")));
    // The old key alone no longer opens it; the new key alone does.
    expect((await call("GET", "/v1/channels/sms")).status).toBe(500);
    const newOnly = await another({ CHANNEL_SECRETS_KEY: NEW_KEY });
    expect(view(await call("GET", "/v1/channels/sms", {}, newOnly)).sealed_with_current_key).toBe(true);
    // What the old key sealed and nobody re-sealed: unreadable under the new key alone.
    expect((await call("GET", "/v1/channels/slack", {}, newOnly)).status).toBe(500);
    await call("PUT", "/v1/channels/sms", { body: SMS });
  });

  it("without CHANNEL_SECRETS_KEY, PUT is 409 not_configured naming the variable, and nothing is stored", async () => {
    const bare = await another({});
    const before = await rawValue("globex", "slack");
    const res = await call(
      "PUT",
      "/v1/channels/slack",
      { body: { webhook_url: SLACK_URL }, key: GLOBEX_KEY },
      bare,
    );
    expect(res.status).toBe(409);
    expect(res.body.error?.code).toBe("not_configured");
    expect(res.body.error?.message).toContain("CHANNEL_SECRETS_KEY");
    expect(await rawValue("globex", "slack")).toBe(before);
    expect((await call("GET", "/v1/channels/sms", {}, bare)).status).toBe(409);
    // Stored secrets cannot be opened either, so a listing that holds some is refused too.
    expect((await call("GET", "/v1/channels", {}, bare)).body.error?.code).toBe("not_configured");
  });

  it("no secret appears in any answer or in any log line of the apps", () => {
    const logs = [...intake.logs, ...opened.flatMap((o) => o.logs)];
    expect(logs.some((line) => line.includes("channel_stored"))).toBe(true);
    expect(answered.length).toBeGreaterThan(40);
    for (const secret of [...SECRETS, OLD_KEY, NEW_KEY]) {
      for (const text of [...answered, ...logs]) expect(text).not.toContain(secret);
    }
  });
});

describe("CHANNEL_SECRETS_KEY and CHANNEL_SECRETS_KEYS_OLD", () => {
  const load = (env: Record<string, string>) => () => loadLeadIntakeConfig({ API_KEYS, ...env });
  it("refuse to start with a malformed key, naming the variable and not the value", () => {
    const short = Buffer.alloc(16, 1).toString("base64");
    for (const [env, variable] of [
      [{ CHANNEL_SECRETS_KEY: short }, "CHANNEL_SECRETS_KEY"],
      [{ CHANNEL_SECRETS_KEY: "not base64 at all!" }, "CHANNEL_SECRETS_KEY"],
      [
        { CHANNEL_SECRETS_KEY: NEW_KEY, CHANNEL_SECRETS_KEYS_OLD: `${OLD_KEY},${short}` },
        "CHANNEL_SECRETS_KEYS_OLD",
      ],
      [{ CHANNEL_SECRETS_KEYS_OLD: OLD_KEY }, "CHANNEL_SECRETS_KEY"],
    ] as const) {
      let thrown: unknown;
      try {
        load(env)();
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      const problems = (thrown as ConfigError).problems;
      expect(problems.map((p) => p.variable)).toContain(variable);
      expect((thrown as Error).message).not.toContain(short);
      expect((thrown as Error).message).not.toContain(OLD_KEY);
    }
    expect(
      String(
        (() => {
          try {
            load({ CHANNEL_SECRETS_KEY: NEW_KEY, CHANNEL_SECRETS_KEYS_OLD: `${OLD_KEY},${short}` })();
          } catch (e) {
            return (e as Error).message;
          }
        })(),
      ),
    ).toContain("entry 2");
  });

  it("accept a 32-byte key, and none", () => {
    expect(load({ CHANNEL_SECRETS_KEY: NEW_KEY })().CHANNEL_SECRETS_KEY?.id).toBe(
      sealingKeyId(Buffer.from(NEW_KEY, "base64")),
    );
    expect(load({})().CHANNEL_SECRETS_KEY).toBeUndefined();
  });
});
