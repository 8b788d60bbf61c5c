import { type FakeSlack, startFakeSlack } from "@followup/system-tests/support";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ProviderAnswer } from "../../src/channels/provider/answer.js";
import { SlackWebhookClient } from "../../src/channels/slack/webhook.js";

let slack: FakeSlack;
let client: SlackWebhookClient;
let webhook: string;

beforeAll(async () => {
  slack = await startFakeSlack();
  client = new SlackWebhookClient({ timeoutMs: 2_000, connections: 2 });
  webhook = slack.webhookUrl();
});

afterAll(async () => {
  await client?.close();
  await slack?.close();
});

beforeEach(() => slack.clearFailures());

/** The webhook URL is the credential: neither it nor its secret path may appear in an answer. */
function expectNoSecret(answer: ProviderAnswer, url = webhook): void {
  const text = JSON.stringify(answer);
  expect(text).not.toContain(url);
  expect(text).not.toContain(new URL(url).pathname);
  expect(text).not.toContain(url.slice(url.lastIndexOf("/") + 1));
}

describe("the Slack webhook client against the fake Slack", () => {
  it("posts {text, blocks} and takes 200 ok as sent", async () => {
    const blocks = [{ type: "section", text: { type: "mrkdwn", text: "*New lead* Ada" } }];
    const answer = await client.send({ webhook_url: webhook }, { to: "", body: "New lead: Ada", blocks });
    expect(answer).toEqual({ classification: { kind: "delivered" }, statusCode: 200 });
    expect(slack.posts.at(-1)).toEqual({
      webhookPath: new URL(webhook).pathname,
      text: "New lead: Ada",
      blocks,
    });
    await client.send({ webhook_url: webhook }, { to: "", body: "plain" });
    expect(slack.posts.at(-1)).toEqual({ webhookPath: new URL(webhook).pathname, text: "plain" });
  });

  it.each([
    ["action_prohibited", 403],
    ["channel_not_found", 404],
    ["channel_is_archived", 410],
  ] as const)("takes %s (%i) as permanent and marks the channel broken", async (failure, status) => {
    slack.failNext(failure);
    const answer = await client.send({ webhook_url: webhook }, { to: "", body: "x" });
    expect(answer).toEqual({
      classification: { kind: "permanent" },
      statusCode: status,
      error: `slack: HTTP ${status}: ${failure}`,
      providerCode: failure,
      permanentReason: "channel_gone",
      effect: "mark_channel_broken",
    });
    expectNoSecret(answer);
  });

  it("takes a webhook Slack does not know (404 no_service) as broken too, naming no URL", async () => {
    const revoked = `${webhook.slice(0, webhook.lastIndexOf("/"))}/revoked0123456789abcdef`;
    const answer = await client.send({ webhook_url: revoked }, { to: "", body: "x" });
    expect(answer).toMatchObject({
      statusCode: 404,
      providerCode: "no_service",
      effect: "mark_channel_broken",
    });
    expectNoSecret(answer, revoked);
  });

  it("takes invalid_payload (400) as permanent without marking the channel", async () => {
    slack.failNext("invalid_payload");
    const answer = await client.send({ webhook_url: webhook }, { to: "", body: "x" });
    expect(answer).toMatchObject({
      classification: { kind: "permanent" },
      statusCode: 400,
      providerCode: "invalid_payload",
      permanentReason: "invalid_message",
    });
    expect(answer.effect).toBeUndefined();
  });

  it("honours Retry-After on 429, copes without it, and retries 500 rollup_error", async () => {
    slack.failNext("rate_limited", { headers: { "retry-after": "2" } });
    const limited = await client.send({ webhook_url: webhook }, { to: "", body: "x" });
    expect(limited).toMatchObject({
      classification: { kind: "retry", reason: "status_429" },
      statusCode: 429,
      retryAfterMs: 2_000,
    });
    slack.failNext("rate_limited");
    const bare = await client.send({ webhook_url: webhook }, { to: "", body: "x" });
    expect(bare.classification).toEqual({ kind: "retry", reason: "status_429" });
    expect(bare.retryAfterMs).toBeUndefined();
    slack.failNext("rollup_error");
    const failed = await client.send({ webhook_url: webhook }, { to: "", body: "x" });
    expect(failed).toMatchObject({
      classification: { kind: "retry", reason: "status_5xx" },
      providerCode: "rollup_error",
    });
  });

  it("refuses an empty text or a bad URL without a call", async () => {
    const before = slack.requests.length;
    expect(await client.send({ webhook_url: webhook }, { to: "", body: "  " })).toMatchObject({
      permanentReason: "invalid_message",
      statusCode: null,
    });
    const bad = await client.send(
      { webhook_url: "hooks.slack.com/services/T/B/secretpart123" },
      { to: "", body: "x" },
    );
    expect(bad).toMatchObject({ permanentReason: "invalid_settings" });
    expect(bad.error).toMatch(/settings\.webhook_url/);
    expect(JSON.stringify(bad)).not.toContain("secretpart123");
    expect(slack.requests.length).toBe(before);
  });

  it("retries a refused connection and names no URL", async () => {
    const dead = "http://127.0.0.1:9/services/T1/B1/deadsecret0123456789";
    const answer = await client.send({ webhook_url: dead }, { to: "", body: "x" });
    expect(answer).toMatchObject({
      classification: { kind: "retry", reason: "connection" },
      statusCode: null,
    });
    expectNoSecret(answer, dead);
  });
});
