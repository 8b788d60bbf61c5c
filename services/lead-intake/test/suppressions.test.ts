import { randomBytes } from "node:crypto";
import {
  normaliseAddress,
  SuppressionList,
  SuppressionRecord,
  SuppressionView,
  smsKeywordOf,
  suppressionId,
  suppressionKey,
} from "@followup/contracts";
import type { NatsServer } from "@followup/nats-harness";
import { twilioSignature, unsubscribeToken } from "@followup/service-kit";
import { type KV, Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { suppressionStore } from "../src/suppressions/index.js";
import { renderPage } from "../src/suppressions/page.js";
import {
  ALEX,
  type ApiCall,
  apiCall,
  expectFieldRefused,
  GLOBEX_KEY,
  type Intake,
  startIntakeWithServer,
  stopIntakeWithServer,
} from "./fixtures.js";

const BASE = "https://engine.example";
const UNSUBSCRIBE_SECRET = "unsubscribe-secret-for-tests-0123456789";
const AUTH_TOKEN = "9e2b7c4d1a0f6e3b8c5d2a7f4e1b0c93";
const SMS = {
  provider: "twilio",
  account_sid: `AC${"b2".repeat(16)}`,
  auth_token: AUTH_TOKEN,
  from: "+14155550000",
};
const EMAIL = "Ada.Lovelace@Example.com";

let server: NatsServer;
let intake: Intake;
let bucket: KV;
let leadId: string;

beforeAll(async () => {
  ({ server, intake } = await startIntakeWithServer({
    env: {
      CHANNEL_SECRETS_KEY: randomBytes(32).toString("base64"),
      UNSUBSCRIBE_SECRET,
      PUBLIC_BASE_URL: `${BASE}/`,
    },
  }));
  bucket = await new Kvm(intake.nc!).open("suppressions");
  expect((await call("PUT", "/v1/channels/sms", { body: SMS })).status).toBe(201);
  const lead = await call("POST", "/v1/lead", { body: { ...ALEX, email: EMAIL } });
  leadId = (lead.body.data as { lead_id: string }).lead_id;
});

afterAll(async () => {
  await stopIntakeWithServer(intake, server);
});

const call = (
  method: "GET" | "PUT" | "POST" | "DELETE",
  url: string,
  options: Parameters<typeof apiCall>[3] = {},
) => apiCall(intake.app, method, url, options);
const view = (c: ApiCall) => SuppressionView.parse(c.body.data);
const list = (c: ApiCall) => SuppressionList.parse(c.body.data);

async function stored(
  tenant: string,
  channel: "sms" | "email",
  address: string,
): Promise<SuppressionRecord | null> {
  const entry = await bucket.get(suppressionKey(tenant, channel, address));
  return entry === null || entry.operation !== "PUT" ? null : SuppressionRecord.parse(entry.json());
}

async function clear(tenant: string, channel: "sms" | "email", address: string): Promise<void> {
  await bucket.delete(suppressionKey(tenant, channel, address));
}

describe("the pure part (contracts)", () => {
  it("normalises addresses and hashes channel and address into the key", () => {
    expect(normaliseAddress("email", "  Ada@Example.COM ")).toEqual({ ok: true, address: "ada@example.com" });
    expect(normaliseAddress("sms", "+1 (415) 555-2671")).toEqual({ ok: true, address: "+14155552671" });
    expect(normaliseAddress("sms", "4155552671").ok).toBe(false);
    expect(normaliseAddress("email", "not-an-address").ok).toBe(false);
    expect(suppressionId("email", "ADA@example.com")).toBe(suppressionId("email", "ada@example.com"));
    expect(suppressionId("email", "a@b.example")).not.toBe(suppressionId("sms", "+14155552671"));
    expect(suppressionKey("acme", "sms", "+1 415 555 2671")).toMatch(/^acme\.[0-9a-f]{64}$/);
    expect(suppressionKey("acme", "email", EMAIL)).not.toContain("ada");
    const page = renderPage({ title: "<script>x</script>", lines: [`<a href="x">'&'</a>`], confirm: "<b>" });
    expect(page).not.toContain("<script>");
    expect(page).toContain("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    expect(page).toContain('<button type="submit">&lt;b&gt;</button>');
  });

  it.each([
    ["STOP", "opt_out"],
    [" stop ", "opt_out"],
    ["StopAll", "opt_out"],
    ["unsubscribe", "opt_out"],
    ["Cancel", "opt_out"],
    ["END", "opt_out"],
    ["quit", "opt_out"],
    ["REVOKE", "opt_out"],
    ["optout", "opt_out"],
    ["Stop please", null],
    ["STOP!", null],
    ["opt out", null],
    ["start", "opt_in"],
    [" UNSTOP", "opt_in"],
    ["yes", "opt_in"],
    ["yes please", null],
  ] as const)("smsKeywordOf(%j) is %s", (body, expected) => {
    expect(smsKeywordOf(body)).toBe(expected);
  });
});

describe("/v1/suppressions", () => {
  it("adds one by hand (201, then 200), finds it by address in any case, lists it, and lifts it", async () => {
    const added = await call("POST", "/v1/suppressions", {
      body: { channel: "email", address: ` ${EMAIL} ` },
    });
    expect(added.status).toBe(201);
    const id = suppressionId("email", EMAIL);
    expect(view(added)).toMatchObject({
      id,
      channel: "email",
      address: "ada.lovelace@example.com",
      reason: "manual",
      source: "api",
    });
    const raw = await bucket.get(`acme.${id}`);
    expect(raw).not.toBeNull();
    expect(raw!.string().toLowerCase()).not.toContain("lovelace");
    expect(SuppressionRecord.parse(raw!.json()).address?.kid).toMatch(/^[0-9a-f]{16}$/);
    expect(
      (await call("POST", "/v1/suppressions", { body: { channel: "email", address: EMAIL.toUpperCase() } }))
        .status,
    ).toBe(200);

    const found = list(
      await call(
        "GET",
        `/v1/suppressions?channel=email&address=${encodeURIComponent("ADA.LOVELACE@example.com")}`,
      ),
    );
    expect(found.suppressions.map((s) => s.id)).toEqual([id]);
    expect(list(await call("GET", "/v1/suppressions")).suppressions.map((s) => s.id)).toContain(id);

    const deleted = await call("DELETE", `/v1/suppressions/${id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.data).toEqual({ id, deleted: true });
    expect(await stored("acme", "email", EMAIL)).toBeNull();
    expect((await call("DELETE", `/v1/suppressions/${id}`)).status).toBe(404);
  });

  it("keeps tenants apart: another tenant neither finds, lists nor lifts it", async () => {
    const phone = "+14155550101";
    const added = view(await call("POST", "/v1/suppressions", { body: { channel: "sms", address: phone } }));
    const search = `/v1/suppressions?channel=sms&address=${encodeURIComponent(phone)}`;
    expect(list(await call("GET", search, { key: GLOBEX_KEY })).count).toBe(0);
    expect(
      list(await call("GET", "/v1/suppressions", { key: GLOBEX_KEY })).suppressions.map((s) => s.id),
    ).not.toContain(added.id);
    expect((await call("DELETE", `/v1/suppressions/${added.id}`, { key: GLOBEX_KEY })).status).toBe(404);
    expect(await stored("acme", "sms", phone)).not.toBeNull();
    await clear("acme", "sms", phone);
  });

  it("lists past the 1024 keys one direct get of last values can serve, a page at a time", async () => {
    const tenant = "bulk";
    const records = Array.from({ length: 1100 }, (_, i) => {
      const address = `+1415555${String(i).padStart(4, "0")}`;
      return SuppressionRecord.parse({
        tenant,
        id: suppressionId("sms", address),
        channel: "sms",
        reason: "stop",
        source: "test",
        created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      });
    });
    await Promise.all(records.map((r) => bucket.put(`${tenant}.${r.id}`, JSON.stringify(r))));
    await bucket.delete(`${tenant}.${records[0]!.id}`);
    const store = suppressionStore(intake.broker.handles(), undefined);
    const first = await store.list(tenant, 1000);
    expect(first.records).toHaveLength(1000);
    expect(first.more).toBe(true);
    const kept = records.slice(1).map((r) => r.id);
    expect(first.records.every((r) => kept.includes(r.id))).toBe(true);
    const all = await store.list(tenant, 2000);
    expect(all.records.map((r) => r.id).sort()).toEqual([...kept].sort());
    expect(all.more).toBe(false);
  });

  it("names each bad field", async () => {
    expectFieldRefused(
      await call("POST", "/v1/suppressions", { body: { channel: "fax", address: "x" } }),
      "channel",
      "must be one of",
    );
    expectFieldRefused(
      await call("POST", "/v1/suppressions", { body: { channel: "sms", address: "555-0101" } }),
      "address",
      "E.164",
    );
    expectFieldRefused(
      await call("POST", "/v1/suppressions", { body: { channel: "email", address: "nobody" } }),
      "address",
      "e-mail",
    );
    expectFieldRefused(
      await call("GET", "/v1/suppressions?address=a%40b.example"),
      "channel",
      "required with address",
    );
    expectFieldRefused(await call("GET", "/v1/suppressions?limit=0"), "limit", "");
    expect((await call("DELETE", "/v1/suppressions/not-a-hash")).status).toBe(404);
    expect((await call("GET", "/v1/suppressions", { key: null })).status).toBe(401);
  });
});

describe("one-click unsubscribe: /u/:token", () => {
  const tokenFor = (address = EMAIL, secret = UNSUBSCRIBE_SECRET, tenant = "acme") =>
    unsubscribeToken(secret, { tenant, leadId, address });
  const oneClick = (
    token: string,
    payload = "List-Unsubscribe=One-Click",
    type = "application/x-www-form-urlencoded",
  ) => intake.app.inject({ method: "POST", url: `/u/${token}`, headers: { "content-type": type }, payload });

  it("GET shows a plain, escaped page under default-src 'none', and changes nothing", async () => {
    await clear("acme", "email", EMAIL);
    const res = await intake.app.inject({ method: "GET", url: `/u/${tokenFor()}` });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(res.headers["content-security-policy"]).toContain("default-src 'none'");
    expect(res.headers["referrer-policy"]).toBe("no-referrer");
    expect(res.body).not.toMatch(/<script/i);
    expect(res.body).toContain("a***@example.com");
    expect(res.body).not.toContain("lovelace");
    expect(res.body).toContain(
      '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">',
    );
    expect(await stored("acme", "email", EMAIL)).toBeNull();
  });

  it("POST with the RFC 8058 body suppresses the lead's address for the token's tenant", async () => {
    await clear("acme", "email", EMAIL);
    const res = await oneClick(tokenFor());
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain("You are unsubscribed");
    expect(await stored("acme", "email", EMAIL)).toMatchObject({
      reason: "unsubscribe",
      source: "one_click",
      channel: "email",
    });
    expect(await stored("globex", "email", EMAIL)).toBeNull();
    expect((await oneClick(tokenFor())).statusCode).toBe(200);
    const page = await intake.app.inject({ method: "GET", url: `/u/${tokenFor()}` });
    expect(page.body).toContain("You are unsubscribed");
    expect(page.body).not.toContain("<form");
  });

  it.each([
    ["another body", "List-Unsubscribe=One-Click&more=1", "application/x-www-form-urlencoded"],
    ["an empty body", "", "application/x-www-form-urlencoded"],
    ["a JSON body", JSON.stringify({ "List-Unsubscribe": "One-Click" }), "application/json"],
  ])("POST with %s is 400 and suppresses nothing", async (_case, payload, type) => {
    await clear("acme", "email", EMAIL);
    const res = await oneClick(tokenFor(), payload, type);
    expect(res.statusCode).toBe(400);
    expect(await stored("acme", "email", EMAIL)).toBeNull();
  });

  it("a forged, tampered or foreign token is 404 and suppresses nothing", async () => {
    await clear("acme", "email", EMAIL);
    const good = tokenFor();
    const flipped = `${good.slice(0, -1)}${good.endsWith("A") ? "B" : "A"}`;
    const forged = [
      tokenFor(EMAIL, "another-secret-that-is-long-enough-000"),
      flipped,
      tokenFor("eve@example.com"),
      // The acme lead's MAC under another tenant's name.
      `globex.${good.split(".").slice(1).join(".")}`,
      "not-a-token",
      `acme.no-such-lead.${good.split(".")[2]}`,
    ];
    for (const token of forged) {
      const get = await intake.app.inject({ method: "GET", url: `/u/${token}` });
      expect(get.statusCode, token).toBe(404);
      expect(get.headers["content-security-policy"]).toContain("default-src 'none'");
      expect((await oneClick(token)).statusCode, token).toBe(404);
    }
    expect(await stored("acme", "email", EMAIL)).toBeNull();
    expect(await stored("globex", "email", EMAIL)).toBeNull();
  });
});

describe("inbound SMS: POST /hooks/twilio/inbound/:tenant", () => {
  const FROM = "+14155550123";
  const URL_OF = (tenant: string) => `${BASE}/hooks/twilio/inbound/${tenant}`;
  function inbound(
    body: string,
    options: { tenant?: string; signWith?: string; signedUrl?: string; from?: string } = {},
  ) {
    const tenant = options.tenant ?? "acme";
    const params = {
      MessageSid: `SM${"1".repeat(32)}`,
      From: options.from ?? FROM,
      To: SMS.from,
      Body: body,
    };
    const signature = twilioSignature(
      options.signedUrl ?? URL_OF(tenant),
      params,
      options.signWith ?? AUTH_TOKEN,
    );
    return intake.app.inject({
      method: "POST",
      url: `/hooks/twilio/inbound/${tenant}`,
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": signature,
        host: "evil.example",
      },
      payload: new URLSearchParams(params).toString(),
    });
  }

  it.each([
    ["STOP", true],
    [" stop ", true],
    ["Unsubscribe", true],
    ["STOPALL", true],
    ["cancel", true],
    ["End", true],
    ["QUIT", true],
    ["revoke", true],
    ["OPTOUT", true],
    ["Stop please", false],
    ["stop.", false],
    ["Hi, can we talk tomorrow?", false],
  ])("%j suppresses the number: %s; the answer is empty TwiML", async (body, suppresses) => {
    await clear("acme", "sms", FROM);
    const res = await inbound(body);
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("text/xml; charset=utf-8");
    expect(res.body).toBe('<?xml version="1.0" encoding="UTF-8"?><Response/>');
    const record = await stored("acme", "sms", FROM);
    if (suppresses)
      expect(record).toMatchObject({ channel: "sms", reason: "stop", source: "twilio_inbound" });
    else expect(record).toBeNull();
    expect(await stored("globex", "sms", FROM)).toBeNull();
  });

  it("START, UNSTOP or YES lifts the sender's own opt-out, never one added by hand", async () => {
    for (const word of ["START", " unstop ", "Yes"]) {
      await inbound("STOP");
      expect(await stored("acme", "sms", FROM)).not.toBeNull();
      expect((await inbound(word)).statusCode).toBe(200);
      expect(await stored("acme", "sms", FROM), word).toBeNull();
    }
    await call("POST", "/v1/suppressions", { body: { channel: "sms", address: FROM } });
    await inbound("START");
    expect(await stored("acme", "sms", FROM)).toMatchObject({ reason: "manual" });
    await clear("acme", "sms", FROM);
  });

  it("refuses (403) a bad signature, one over the Host header's URL, another token, and a tenant without sms settings", async () => {
    await clear("acme", "sms", FROM);
    const refusals = [
      await inbound("STOP", { signWith: "0".repeat(32) }),
      await inbound("STOP", { signedUrl: "http://evil.example/hooks/twilio/inbound/acme" }),
      // A signature that is acme's, on globex's path (globex has no sms settings).
      await inbound("STOP", { tenant: "globex", signedUrl: URL_OF("acme") }),
      await inbound("STOP", { tenant: "globex" }),
    ];
    for (const res of refusals) {
      expect(res.statusCode).toBe(403);
      expect(res.json()).toMatchObject({ ok: false, error: { code: "invalid_signature" } });
    }
    const unsigned = await intake.app.inject({
      method: "POST",
      url: "/hooks/twilio/inbound/acme",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: new URLSearchParams({ From: FROM, Body: "STOP" }).toString(),
    });
    expect(unsigned.statusCode).toBe(403);
    expect(await stored("acme", "sms", FROM)).toBeNull();
    expect(await stored("globex", "sms", FROM)).toBeNull();
  });

  it("keeps each tenant's list apart: a STOP to acme's number suppresses nothing for globex", async () => {
    await inbound("STOP");
    expect(
      list(await call("GET", `/v1/suppressions?channel=sms&address=${encodeURIComponent(FROM)}`)).count,
    ).toBe(1);
    expect(
      list(
        await call("GET", `/v1/suppressions?channel=sms&address=${encodeURIComponent(FROM)}`, {
          key: GLOBEX_KEY,
        }),
      ).count,
    ).toBe(0);
    await clear("acme", "sms", FROM);
  });

  it("never logs an address, a number or the auth token in clear", () => {
    for (const line of intake.logs) {
      expect(line).not.toContain(FROM);
      expect(line.toLowerCase()).not.toContain("lovelace");
      expect(line).not.toContain(AUTH_TOKEN);
    }
    expect(intake.logs.some((line) => line.includes("sms_opt_out_received"))).toBe(true);
  });
});
