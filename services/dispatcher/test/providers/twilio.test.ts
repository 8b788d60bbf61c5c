import { twilioStatusCallbackUrl } from "@followup/service-kit";
import { type FakeTwilio, startFakeTwilio } from "@followup/system-tests/support";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ProviderAnswer } from "../../src/channels/provider/answer.js";
import { normalisePhone } from "../../src/channels/sms/phone.js";
import { SMS_MAX_CHARS, TwilioClient, type TwilioSettings } from "../../src/channels/sms/twilio.js";

let twilio: FakeTwilio;
let client: TwilioClient;
const MG = `MG${"ab".repeat(16)}`;

beforeAll(async () => {
  twilio = await startFakeTwilio();
  client = new TwilioClient({ apiUrl: twilio.url, timeoutMs: 2_000, connections: 4 });
});

afterAll(async () => {
  await client?.close();
  await twilio?.close();
});

beforeEach(() => twilio.clearFailures());

function tokenSettings(extra: Partial<TwilioSettings> = {}): TwilioSettings {
  return {
    provider: "twilio",
    account_sid: twilio.account.accountSid,
    auth_token: twilio.account.authToken,
    from: "+15017122661",
    ...extra,
  };
}

/** Every secret the fake's account has, and what Basic auth makes of them. */
function secrets(): string[] {
  const { accountSid, authToken, apiKeySid, apiKeySecret } = twilio.account;
  return [
    authToken,
    apiKeySecret,
    Buffer.from(`${accountSid}:${authToken}`).toString("base64"),
    Buffer.from(`${apiKeySid}:${apiKeySecret}`).toString("base64"),
  ];
}

function expectNoSecret(answer: ProviderAnswer): void {
  const text = JSON.stringify(answer);
  for (const secret of secrets()) expect(text).not.toContain(secret);
}

describe("the Twilio client against the fake Twilio", () => {
  it("sends a form-encoded message in E.164 with Basic auth and keeps the message SID", async () => {
    const callback = twilioStatusCallbackUrl("https://engine.example", "acme");
    const answer = await client.send(tokenSettings({ default_region: "US" }), {
      to: "(415) 555-2671",
      body: "Hi Ada, still interested?",
      statusCallbackUrl: callback,
    });
    expect(answer.classification).toEqual({ kind: "delivered" });
    expect(answer.statusCode).toBe(201);
    const message = twilio.messages.at(-1)!;
    expect(answer.providerMessageId).toBe(message.sid);
    expect(message.sid).toMatch(/^SM[0-9a-f]{32}$/);
    expect(message).toMatchObject({
      authUser: twilio.account.accountSid,
      to: "+14155552671",
      from: "+15017122661",
      body: "Hi Ada, still interested?",
      statusCallback: "https://engine.example/hooks/twilio/status/acme",
    });
    expect(Object.keys(message.params).sort()).toEqual(["Body", "From", "StatusCallback", "To"]);
    expectNoSecret(answer);
  });

  it("authenticates with an API key and sends through a messaging service", async () => {
    const { accountSid, apiKeySid, apiKeySecret } = twilio.account;
    const answer = await client.send(
      {
        provider: "twilio",
        account_sid: accountSid,
        api_key_sid: apiKeySid,
        api_key_secret: apiKeySecret,
        messaging_service_sid: MG,
      },
      { to: "+44 20 7946 0958", body: "Hello" },
    );
    expect(answer.classification).toEqual({ kind: "delivered" });
    const message = twilio.messages.at(-1)!;
    expect(message).toMatchObject({ authUser: apiKeySid, to: "+442079460958", messagingServiceSid: MG });
    expect(message.from).toBeUndefined();
    expectNoSecret(answer);
  });

  it("refuses a number it cannot parse, and one without its region, without calling Twilio", async () => {
    const before = twilio.requests.length;
    for (const [to, region] of [
      ["not a phone", "US"],
      ["12", "US"],
      ["+1 999 555 1234", undefined],
      ["call (415) 555-2671", "US"],
      ["(415) 555-2671", undefined],
    ] as const) {
      const answer = await client.send(tokenSettings(region ? { default_region: region } : {}), {
        to,
        body: "x",
      });
      expect(answer, to).toMatchObject({
        classification: { kind: "permanent" },
        statusCode: null,
        permanentReason: "invalid_recipient",
      });
      expect(answer.error).toMatch(/^twilio: to: /);
    }
    expect(twilio.requests.length).toBe(before);
  });

  it("takes a body of 1600 characters and refuses 1601 without a call", async () => {
    const ok = await client.send(tokenSettings(), { to: "+14155552671", body: "a".repeat(SMS_MAX_CHARS) });
    expect(ok.classification).toEqual({ kind: "delivered" });
    expect(twilio.messages.at(-1)!.body.length).toBe(1600);
    const before = twilio.requests.length;
    const long = await client.send(tokenSettings(), {
      to: "+14155552671",
      body: "a".repeat(SMS_MAX_CHARS + 1),
    });
    expect(long).toMatchObject({
      classification: { kind: "permanent" },
      permanentReason: "message_too_long",
    });
    expect(twilio.requests.length).toBe(before);
  });

  it("marks a recipient who replied STOP (21610) for suppression, permanently", async () => {
    // Twilio's magic test number for a recipient who has unsubscribed.
    const answer = await client.send(tokenSettings(), { to: "+15005550004", body: "x" });
    expect(answer).toMatchObject({
      classification: { kind: "permanent" },
      statusCode: 400,
      providerCode: "21610",
      permanentReason: "opted_out",
      effect: "suppress_recipient",
    });
    expect(answer.error).toBe("twilio: HTTP 400 code 21610: Attempt to send to unsubscribed recipient");
    twilio.failNext("unsubscribed");
    const scripted = await client.send(tokenSettings(), { to: "+14155552671", body: "x" });
    expect(scripted).toMatchObject({ permanentReason: "opted_out", effect: "suppress_recipient" });
  });

  it("takes 21211 (invalid To) as a permanent invalid recipient, with no suppression", async () => {
    const answer = await client.send(tokenSettings(), { to: "+15005550001", body: "x" });
    expect(answer).toMatchObject({
      classification: { kind: "permanent" },
      statusCode: 400,
      providerCode: "21211",
      permanentReason: "invalid_recipient",
    });
    expect(answer.effect).toBeUndefined();
  });

  it("retries 429 (20429), with and without Retry-After, and 5xx", async () => {
    twilio.failNext("too_many_requests", { headers: { "retry-after": "7" } });
    const limited = await client.send(tokenSettings(), { to: "+14155552671", body: "x" });
    expect(limited).toMatchObject({
      classification: { kind: "retry", reason: "status_429" },
      statusCode: 429,
      providerCode: "20429",
      retryAfterMs: 7_000,
    });
    twilio.failNext("too_many_requests");
    const bare = await client.send(tokenSettings(), { to: "+14155552671", body: "x" });
    expect(bare.classification).toEqual({ kind: "retry", reason: "status_429" });
    expect(bare.retryAfterMs).toBeUndefined();
    twilio.failNext("server_error");
    twilio.failNext("service_unavailable");
    for (const status of [500, 503]) {
      const answer = await client.send(tokenSettings(), { to: "+14155552671", body: "x" });
      expect(answer).toMatchObject({
        classification: { kind: "retry", reason: "status_5xx" },
        statusCode: status,
      });
    }
    // The failures were for a while: the next send goes through.
    expect((await client.send(tokenSettings(), { to: "+14155552671", body: "x" })).classification.kind).toBe(
      "delivered",
    );
  });

  it("takes refused credentials as permanent and never names them", async () => {
    const answer = await client.send(tokenSettings({ auth_token: "wrong-token-0123456789" }), {
      to: "+14155552671",
      body: "x",
    });
    expect(answer).toMatchObject({
      classification: { kind: "permanent" },
      statusCode: 401,
      providerCode: "20003",
      permanentReason: "unauthorized",
    });
    expect(JSON.stringify(answer)).not.toContain("wrong-token-0123456789");
    expectNoSecret(answer);
  });

  it("refuses incomplete settings without a call, naming the field and not the value", async () => {
    const before = twilio.requests.length;
    const cases: [Partial<TwilioSettings>, RegExp][] = [
      [{ from: undefined }, /settings\.from: expected exactly one of from and messaging_service_sid/],
      [{ messaging_service_sid: MG }, /settings\.from: expected exactly one/],
      [{ auth_token: undefined }, /settings\.auth_token: expected auth_token or api_key_sid/],
      [{ messaging_service_sid: "MG123", from: undefined }, /settings\.messaging_service_sid: expected MG/],
      [{ account_sid: "AC-nope" }, /settings\.account_sid/],
      [{ default_region: "XX" }, /settings\.default_region/],
    ];
    for (const [extra, message] of cases) {
      const answer = await client.send(tokenSettings(extra), { to: "+14155552671", body: "x" });
      expect(answer).toMatchObject({
        classification: { kind: "permanent" },
        permanentReason: "invalid_settings",
      });
      expect(answer.error).toMatch(message);
      expectNoSecret(answer);
    }
    expect(twilio.requests.length).toBe(before);
  });

  it("retries a connection error and names no secret in it", async () => {
    const dead = new TwilioClient({ apiUrl: "http://127.0.0.1:9", timeoutMs: 1_000, connections: 1 });
    try {
      const answer = await dead.send(tokenSettings(), { to: "+14155552671", body: "x" });
      expect(answer).toMatchObject({
        classification: { kind: "retry", reason: "connection" },
        statusCode: null,
      });
      expect(answer.error).toMatch(/^twilio: /);
      expectNoSecret(answer);
    } finally {
      await dead.close();
    }
  });
});

describe("E.164 normalisation", () => {
  it.each([
    ["+1 415 555 2671", undefined, "+14155552671", "US"],
    ["(415) 555-2671", "US", "+14155552671", "US"],
    ["0151 23456789", "de", "+4915123456789", "DE"],
    ["+44 20 7946 0958", "US", "+442079460958", "GB"],
  ])("%s (region %s) is %s in %s", (input, region, e164, country) => {
    expect(normalisePhone(input, region)).toMatchObject({ ok: true, e164, country });
  });

  it("gives the country's zones from the runtime's CLDR data, and the zone when there is one", () => {
    const gb = normalisePhone("+44 20 7946 0958");
    const us = normalisePhone("+1 415 555 2671");
    expect(gb.ok && us.ok).toBe(true);
    if (!gb.ok || !us.ok) return;
    if (gb.timeZones === undefined) return; // a runtime without Intl Locale Info: nothing to assert
    expect(gb.timeZones).toEqual(["Europe/London"]);
    expect(gb.timeZone).toBe("Europe/London");
    expect(us.timeZones).toContain("America/New_York");
    expect(us.timeZone).toBeUndefined();
  });

  it("leaves the country out for a non-geographic number and refuses what is not a number", () => {
    const freephone = normalisePhone("+800 1234 5678");
    expect(freephone).toMatchObject({ ok: true, e164: "+80012345678" });
    expect(freephone.ok && freephone.country).toBeUndefined();
    expect(normalisePhone("abc", "US")).toEqual({ ok: false, reason: "not_a_number" });
    expect(normalisePhone("+1 212 555 01")).toEqual({ ok: false, reason: "invalid_number" });
    expect(normalisePhone("4155552671", "ZZ")).toEqual({ ok: false, reason: "invalid_region" });
  });
});
