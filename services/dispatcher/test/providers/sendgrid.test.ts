import { createServer, type Socket } from "node:net";
import { verifyUnsubscribeToken } from "@followup/service-kit";
import { type FakeSendGrid, startFakeSendGrid } from "@followup/system-tests/support";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  parseRateLimitReset,
  SendGridClient,
  type SendGridSettings,
} from "../../src/channels/email/sendgrid.js";
import type { OutboundMessage, ProviderAnswer } from "../../src/channels/provider/answer.js";
import { MAX_RETRY_AFTER_MS } from "../../src/retry-after.js";
import { emailMessage, LEAD, tokenOf, UNSUBSCRIBE_SECRET } from "./email-fixtures.js";

const token = tokenOf(emailMessage().unsubscribeUrl!);
const lead = LEAD;
const message = emailMessage;

let sendgrid: FakeSendGrid;
let client: SendGridClient;

beforeAll(async () => {
  sendgrid = await startFakeSendGrid();
  client = new SendGridClient({ apiUrl: sendgrid.url, timeoutMs: 2_000, connections: 4 });
});

afterAll(async () => {
  await client?.close();
  await sendgrid?.close();
});

beforeEach(() => sendgrid.clearFailures());

function settings(extra: Partial<SendGridSettings> = {}): SendGridSettings {
  return { provider: "sendgrid", api_key: sendgrid.apiKey, from: "sales@acme.example", ...extra };
}

function expectNoSecret(answer: ProviderAnswer): void {
  expect(JSON.stringify(answer)).not.toContain(sendgrid.apiKey);
}

describe("the SendGrid client against the fake SendGrid", () => {
  it("sends the v3 Mail Send body with Bearer auth and keeps X-Message-Id", async () => {
    const answer = await client.send(
      settings({ from_name: "Acme Sales", reply_to: "help@acme.example" }),
      message(),
    );
    expect(answer).toMatchObject({ classification: { kind: "delivered" }, statusCode: 202 });
    const mail = sendgrid.mails.at(-1)!;
    expect(answer.providerMessageId).toBe(mail.messageId);
    expect(mail.body).toEqual({
      personalizations: [{ to: [{ email: "ada@example.com" }] }],
      from: { email: "sales@acme.example", name: "Acme Sales" },
      reply_to: { email: "help@acme.example" },
      subject: "Your quote",
      content: [
        { type: "text/plain", value: "Hi Ada, here is your quote." },
        { type: "text/html", value: "<p>Hi Ada, here is your <b>quote</b>.</p>" },
      ],
      headers: {
        "List-Unsubscribe": `<https://engine.example/u/${token}>`,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
      },
    });
    expectNoSecret(answer);
  });

  it("puts a one-click unsubscribe URL whose token verifies for this lead and address", async () => {
    await client.send(settings(), message({ html: undefined }));
    const headers = sendgrid.mails.at(-1)!.body.headers as Record<string, string>;
    const sent = tokenOf(headers["List-Unsubscribe"]!);
    expect(verifyUnsubscribeToken(UNSUBSCRIBE_SECRET, sent, lead)).toBe(true);
    expect(verifyUnsubscribeToken(UNSUBSCRIBE_SECRET, sent, { ...lead, address: "eve@example.com" })).toBe(
      false,
    );
    expect(sendgrid.mails.at(-1)!.body.content).toEqual([
      { type: "text/plain", value: "Hi Ada, here is your quote." },
    ]);
  });

  it("refuses, without a call, an e-mail without an unsubscribe URL, a bad address or no subject", async () => {
    const before = sendgrid.requests.length;
    const cases: [Partial<OutboundMessage>, string, RegExp][] = [
      [{ unsubscribeUrl: undefined }, "invalid_message", /unsubscribeUrl/],
      [{ to: "ada at example.com" }, "invalid_recipient", /^sendgrid: to: /],
      [{ to: "ada@example.com\r\nBcc: eve@example.com" }, "invalid_recipient", /to:/],
      [{ subject: "" }, "invalid_message", /subject/],
      [{ subject: "two\nlines" }, "invalid_message", /subject/],
    ];
    for (const [extra, reason, why] of cases) {
      const answer = await client.send(settings(), message(extra));
      expect(answer).toMatchObject({
        classification: { kind: "permanent" },
        statusCode: null,
        permanentReason: reason,
      });
      expect(answer.error).toMatch(why);
    }
    expect(sendgrid.requests.length).toBe(before);
  });

  it("waits until X-RateLimit-Reset on 429, and copes with its absence", async () => {
    const resetInS = 30;
    sendgrid.failNext("too_many_requests", { rateLimitResetInS: resetInS });
    const limited = await client.send(settings(), message());
    expect(limited).toMatchObject({
      classification: { kind: "retry", reason: "status_429" },
      statusCode: 429,
    });
    // The reset is whole epoch seconds, so up to a second less than asked.
    expect(limited.retryAfterMs).toBeGreaterThan((resetInS - 2) * 1000);
    expect(limited.retryAfterMs).toBeLessThanOrEqual(resetInS * 1000);
    expect(limited.error).toBe("sendgrid: HTTP 429: too many requests");

    sendgrid.failNext("too_many_requests");
    const bare = await client.send(settings(), message());
    expect(bare.classification).toEqual({ kind: "retry", reason: "status_429" });
    expect(bare.retryAfterMs).toBeUndefined();

    sendgrid.failNext("too_many_requests", { headers: { "retry-after": "4" } });
    expect((await client.send(settings(), message())).retryAfterMs).toBe(4_000);
  });

  it("reads X-RateLimit-Reset as epoch seconds from now, bounded", () => {
    const now = new Date("2026-12-01T12:00:00Z");
    const epoch = now.getTime() / 1000;
    expect(parseRateLimitReset(String(epoch + 42), now)).toBe(42_000);
    expect(parseRateLimitReset(String(epoch - 10), now)).toBe(0);
    expect(parseRateLimitReset(String(epoch + 3 * 86_400), now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRateLimitReset(undefined, now)).toBeNull();
    expect(parseRateLimitReset("", now)).toBeNull();
    expect(parseRateLimitReset("soon", now)).toBeNull();
    expect(parseRateLimitReset("-5", now)).toBeNull();
  });

  it.each([
    [
      "bad_request",
      400,
      "invalid_recipient",
      /personalizations\.0\.to\.0\.email: Does not contain a valid address/,
    ],
    ["unauthorized", 401, "unauthorized", /authorization grant is invalid/],
    ["forbidden", 403, "unauthorized", /access forbidden/],
    ["payload_too_large", 413, "message_too_long", /too large/],
  ] as const)("takes %s (%i) as permanent: %s", async (failure, status, reason, words) => {
    sendgrid.failNext(failure);
    const answer = await client.send(settings(), message());
    expect(answer).toMatchObject({
      classification: { kind: "permanent" },
      statusCode: status,
      permanentReason: reason,
    });
    expect(answer.error).toMatch(words);
    expectNoSecret(answer);
  });

  it("retries 5xx until the provider recovers", async () => {
    sendgrid.failNext("server_error", { times: 2 });
    for (let i = 0; i < 2; i++)
      expect((await client.send(settings(), message())).classification).toEqual({
        kind: "retry",
        reason: "status_5xx",
      });
    expect((await client.send(settings(), message())).classification).toEqual({ kind: "delivered" });
  });

  it("is refused with a wrong key, permanently, and never shows a key", async () => {
    const wrong = "SG.wrong-key.0123456789abcdefghijklmnop";
    const answer = await client.send(settings({ api_key: wrong }), message());
    expect(answer).toMatchObject({
      classification: { kind: "permanent" },
      statusCode: 401,
      permanentReason: "unauthorized",
    });
    expect(JSON.stringify(answer)).not.toContain(wrong);
    expectNoSecret(answer);
  });

  it("times out on a provider that does not answer, naming no key", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket)); // takes the call, never answers
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as { port: number }).port;
    const slow = new SendGridClient({ apiUrl: `http://127.0.0.1:${port}`, timeoutMs: 300, connections: 1 });
    try {
      const answer = await slow.send(settings(), message());
      expect(answer).toMatchObject({
        classification: { kind: "retry", reason: "timeout" },
        statusCode: null,
      });
      expect(answer.error).toBe("sendgrid: timeout: no response within 300 ms");
      expectNoSecret(answer);
    } finally {
      await slow.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
