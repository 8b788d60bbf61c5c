import { createTransport } from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeSendGrid,
  type FakeSlack,
  type FakeTwilio,
  type SmtpTestServer,
  startFakeSendGrid,
  startFakeSlack,
  startFakeTwilio,
  startSmtpServer,
} from "./index.js";

// The fakes must refuse what the providers refuse, or the clients' tests prove nothing: each
// case here sends what a broken client might and expects the provider's documented refusal.

let twilio: FakeTwilio;
let sendgrid: FakeSendGrid;
let slack: FakeSlack;

beforeAll(async () => {
  [twilio, sendgrid, slack] = await Promise.all([startFakeTwilio(), startFakeSendGrid(), startFakeSlack()]);
});

afterAll(async () => {
  await Promise.all([twilio?.close(), sendgrid?.close(), slack?.close()]);
});

describe("the fake Twilio", () => {
  const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
  async function post(
    form: Record<string, string>,
    options: { auth?: string; path?: string; type?: string } = {},
  ) {
    const { accountSid, authToken } = twilio.account;
    const response = await fetch(
      `${twilio.url}${options.path ?? `/2010-04-01/Accounts/${accountSid}/Messages.json`}`,
      {
        method: "POST",
        headers: {
          authorization: options.auth ?? basic(accountSid, authToken),
          "content-type": options.type ?? "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams(form).toString(),
      },
    );
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }
  const good = { To: "+14155552671", From: "+15017122661", Body: "hi" };

  it("answers 201 with a Message resource", async () => {
    const { status, body } = await post(good);
    expect(status).toBe(201);
    expect(body).toMatchObject({
      status: "queued",
      direction: "outbound-api",
      error_code: null,
      to: "+14155552671",
    });
    expect(body.sid).toMatch(/^SM[0-9a-f]{32}$/);
  });

  it.each([
    ["a wrong auth token", good, { auth: "wrong" }, 401, 20003],
    [
      "another account's path",
      good,
      { path: `/2010-04-01/Accounts/AC${"0".repeat(32)}/Messages.json` },
      404,
      20404,
    ],
    ["a JSON body", good, { type: "application/json" }, 400, 21604],
    ["no To", { From: "+15017122661", Body: "hi" }, {}, 400, 21604],
    ["a To not in E.164", { ...good, To: "(415) 555-2671" }, {}, 400, 21211],
    ["neither From nor MessagingServiceSid", { To: "+14155552671", Body: "hi" }, {}, 400, 21603],
    [
      "both From and MessagingServiceSid",
      { ...good, MessagingServiceSid: `MG${"a".repeat(32)}` },
      {},
      400,
      21603,
    ],
    [
      "a malformed MessagingServiceSid",
      { To: "+14155552671", Body: "hi", MessagingServiceSid: "MG1" },
      {},
      400,
      21702,
    ],
    ["no Body", { To: "+14155552671", From: "+15017122661" }, {}, 400, 21602],
    ["a Body of 1601 characters", { ...good, Body: "a".repeat(1601) }, {}, 400, 21617],
  ])(
    "refuses %s",
    async (_case, form, options: { auth?: string; path?: string; type?: string }, status, code) => {
      const before = twilio.messages.length;
      const answer = await post(
        form,
        options.auth ? { ...options, auth: basic(twilio.account.accountSid, options.auth) } : options,
      );
      expect(answer.status).toBe(status);
      expect(answer.body).toMatchObject({
        code,
        status,
        more_info: `https://www.twilio.com/docs/errors/${code}`,
      });
      expect(typeof answer.body.message).toBe("string");
      expect(twilio.messages.length).toBe(before);
    },
  );

  it("fails for a while when told to, then recovers", async () => {
    twilio.failNext("too_many_requests", { times: 2, headers: { "retry-after": "1" } });
    expect((await post(good)).status).toBe(429);
    expect((await post(good)).body).toMatchObject({ code: 20429, status: 429 });
    expect((await post(good)).status).toBe(201);
  });
});

describe("the fake SendGrid", () => {
  const mail = {
    personalizations: [{ to: [{ email: "ada@example.com" }] }],
    from: { email: "sales@acme.example" },
    subject: "s",
    content: [{ type: "text/plain", value: "x" }],
  };
  async function post(body: unknown, key = sendgrid.apiKey) {
    const response = await fetch(`${sendgrid.url}/v3/mail/send`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, headers: response.headers, text: await response.text() };
  }

  it("answers 202 with X-Message-Id and no body", async () => {
    const { status, headers, text } = await post(mail);
    expect(status).toBe(202);
    expect(headers.get("x-message-id")).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(text).toBe("");
  });

  it.each([
    ["no personalizations", { ...mail, personalizations: [] }, "personalizations"],
    ["a personalization without to", { ...mail, personalizations: [{}] }, "personalizations.0.to"],
    [
      "a bad recipient",
      { ...mail, personalizations: [{ to: [{ email: "ada" }] }] },
      "personalizations.0.to.0.email",
    ],
    ["no from", { ...mail, from: undefined }, "from.email"],
    ["no subject", { ...mail, subject: undefined }, "subject"],
    ["no content", { ...mail, content: [] }, "content"],
    [
      "html before text",
      { ...mail, content: [{ type: "text/html", value: "<p>x</p>" }, ...mail.content] },
      "content",
    ],
    ["a non-string header", { ...mail, headers: { "X-Count": 1 } }, "headers"],
  ])("refuses %s, naming the field", async (_case, body, field) => {
    const { status, text } = await post(body);
    expect(status).toBe(400);
    const errors = (JSON.parse(text) as { errors: { field: string | null; message: string }[] }).errors;
    expect(errors.map((e) => e.field)).toContain(field);
  });

  it("refuses a wrong key with 401 and SendGrid's body", async () => {
    const { status, text } = await post(mail, "SG.nope");
    expect(status).toBe(401);
    expect(JSON.parse(text)).toEqual({
      errors: [
        {
          field: null,
          message: "The provided authorization grant is invalid, expired, or revoked",
          help: null,
        },
      ],
    });
  });

  it("sends X-RateLimit-* on a scripted 429 only when asked", async () => {
    sendgrid.failNext("too_many_requests", { rateLimitResetInS: 60 });
    sendgrid.failNext("too_many_requests");
    const withHeaders = await post(mail);
    expect(withHeaders.status).toBe(429);
    expect(withHeaders.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(Number(withHeaders.headers.get("x-ratelimit-reset"))).toBeGreaterThan(Date.now() / 1000);
    const bare = await post(mail);
    expect(bare.status).toBe(429);
    expect(bare.headers.get("x-ratelimit-reset")).toBeNull();
    expect((await post(mail)).status).toBe(202);
  });
});

describe("the fake Slack", () => {
  async function post(url: string, body: string, type = "application/json") {
    const response = await fetch(url, { method: "POST", headers: { "content-type": type }, body });
    return { status: response.status, text: await response.text() };
  }

  it("answers ok to a known webhook and Slack's plain-text errors otherwise", async () => {
    const url = slack.webhookUrl();
    expect(await post(url, JSON.stringify({ text: "hi" }))).toEqual({ status: 200, text: "ok" });
    expect(await post(url, "{not json")).toEqual({ status: 400, text: "invalid_payload" });
    expect(await post(url, JSON.stringify({}))).toEqual({ status: 400, text: "no_text" });
    expect(await post(url, JSON.stringify({ text: "x", blocks: "no" }))).toEqual({
      status: 400,
      text: "invalid_blocks",
    });
    expect(await post(`${url}x`, JSON.stringify({ text: "hi" }))).toEqual({
      status: 404,
      text: "no_service",
    });
    slack.failNext("channel_is_archived", { times: 2 });
    expect(await post(url, JSON.stringify({ text: "hi" }))).toEqual({
      status: 410,
      text: "channel_is_archived",
    });
    expect(await post(url, JSON.stringify({ text: "hi" }))).toEqual({
      status: 410,
      text: "channel_is_archived",
    });
    expect(slack.posts.filter((p) => p.text === "hi")).toHaveLength(1);
  });
});

describe("the SMTP test server", () => {
  let server: SmtpTestServer;
  beforeAll(async () => {
    server = await startSmtpServer({ users: [{ user: "u", pass: "p-0123456789" }] });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("checks AUTH and records the parsed mail", async () => {
    const send = (pass: string) =>
      createTransport({
        host: server.host,
        port: server.port,
        secure: false,
        auth: { user: "u", pass },
      }).sendMail({
        from: "a@example.com",
        to: "b@example.com",
        subject: "hello",
        text: "body",
      });
    await expect(send("wrong")).rejects.toMatchObject({ responseCode: 535 });
    expect(server.authFailures).toBe(1);
    await send("p-0123456789");
    await server.waitForMails(1);
    expect(server.mails[0]).toMatchObject({ user: "u", from: "a@example.com", to: ["b@example.com"] });
    expect(server.mails[0]!.parsed.subject).toBe("hello");
  });
});
