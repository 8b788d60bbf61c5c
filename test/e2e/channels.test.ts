// Channels end to end: lead-intake, scheduler and dispatcher as child processes under their own
// broker identities, the tenant's providers configured through /v1/channels and /v1/templates,
// and the fakes (Twilio, Slack) and a real SMTP server receiving what the dispatcher sends. An
// SMS, an e-mail and a Slack step deliver three rendered messages; an inbound STOP, a one-click
// unsubscribe and Twilio's 21610 suppress, and the next step to that address ends `suppressed`;
// an SMS due at night in the lead's zone is held; Twilio's status callback reaches the lead view;
// no secret (and no name, number or address) shows in the logs, the events or the answers.
//
// The scenarios of acme and globex run side by side in one engine, each lead with its own steps'
// channels: the test writes them into the lead's plan right after the scheduler made it
// (leadWithSteps), since a sequence applies to every lead of its tenant. Tenant initech goes the
// way a customer does: a template and a sequence through the API, then a lead.

import { randomBytes } from "node:crypto";
import {
  type ChannelSettingsRecord,
  channelSettingsKey,
  FollowupPlan,
  type LeadView,
  leadKey,
  topology,
} from "@followup/contracts";
import { waitFor } from "@followup/nats-harness";
import { sealingKeyring, sealSecret, secretContext, twilioSignature } from "@followup/service-kit";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  channelTestEnv,
  contractViolations,
  type Engine,
  type EventRecorder,
  type FakeSendGrid,
  type FakeSlack,
  type FakeTwilio,
  PUBLIC_BASE_URL,
  putTwilioChannel,
  REFERENCE_LEADS,
  recordEvents,
  SMS_FROM,
  type SmtpTestServer,
  startEngine,
  startFakeSendGrid,
  startFakeSlack,
  startFakeTwilio,
  startSmtpServer,
  TENANTS,
  zoneWhere,
} from "../support/index.js";

const CHANNEL_ENV = channelTestEnv();
const { CHANNEL_SECRETS_KEY, UNSUBSCRIBE_SECRET } = CHANNEL_ENV;
const SMTP_USER = { user: "acme-mailer", pass: `smtp-${randomBytes(12).toString("hex")}` };
const TENANT = TENANTS.acme.tenant;
/** Steps 1, 2 and 3 are due 6, 14 and 15 s after the lead: room for a STOP or an unsubscribe before each. */
const SCHEDULES = "6s,14s,15s";

let engine: Engine;
let twilio: FakeTwilio;
let slack: FakeSlack;
/** globex's Slack: a fake of its own, so the failure one test scripts reaches no other test. */
let globexSlack: FakeSlack;
let smtp: SmtpTestServer;
let sendgrid: FakeSendGrid;
let events: EventRecorder;
let nc: NatsConnection;
let plans: KV;
let slackWebhook: string;
let globexSlackWebhook: string;
const channelAnswers: string[] = [];

const DAY_ZONE = zoneWhere("day");

beforeAll(async () => {
  [twilio, slack, smtp, sendgrid] = await Promise.all([
    startFakeTwilio(),
    startFakeSlack(),
    startSmtpServer({ users: [SMTP_USER] }),
    startFakeSendGrid(),
  ]);
  globexSlack = await startFakeSlack();
  engine = await startEngine({
    schedules: SCHEDULES,
    env: CHANNEL_ENV,
    serviceEnv: { dispatcher: { TWILIO_API_URL: twilio.url, SENDGRID_API_URL: sendgrid.url } },
  });
  events = await recordEvents(engine.natsUrl, undefined, engine.as("tail"));
  nc = await connect({ servers: engine.natsUrl, ...engine.as() });
  const kvm = new Kvm(nc);
  plans = await kvm.open(topology().buckets.plans.bucket);

  const sms = await putTwilioChannel(engine.api, twilio);
  const email = await engine.api.request("PUT", "/v1/channels/email", {
    body: {
      provider: "smtp",
      host: smtp.host,
      port: smtp.port,
      secure: false,
      ...SMTP_USER,
      from: "sales@acme.example",
    },
  });
  expect(email.status).toBe(201);
  // Tenant globex mails through SendGrid.
  const globexEmail = await apiOf("globex").request("PUT", "/v1/channels/email", {
    body: {
      provider: "sendgrid",
      api_key: sendgrid.apiKey,
      from: "hello@globex.example",
      reply_to: "help@globex.example",
    },
  });
  expect(globexEmail.status, JSON.stringify(globexEmail.body)).toBe(201);
  // The fake Slack speaks http, which /v1/channels refuses for a webhook (https only): its record
  // is written as lead-intake writes one, the URL sealed with the same key.
  const keyring = sealingKeyring(CHANNEL_SECRETS_KEY);
  const settings = await kvm.open(topology().buckets.channels.bucket);
  slackWebhook = slack.webhookUrl();
  globexSlackWebhook = globexSlack.webhookUrl();
  for (const [tenant, url] of [
    [TENANT, slackWebhook],
    [TENANTS.globex.tenant, globexSlackWebhook],
  ] as const) {
    const record: ChannelSettingsRecord = {
      tenant,
      name: "slack",
      updated_at: new Date().toISOString(),
      settings: {},
      secrets: { webhook_url: sealSecret(keyring, url, secretContext(tenant, "slack", "webhook_url")) },
    };
    await settings.put(channelSettingsKey(tenant, "slack"), JSON.stringify(record));
  }

  for (const [name, template] of Object.entries({
    "sms-hello": {
      channel: "sms",
      body: 'Hi {{ lead.first_name | default: "there" }}, this is follow-up {{ step }}.',
    },
    "email-hello": {
      channel: "email",
      subject: "Your enquiry, {{ lead.first_name }}",
      body: "Hello {{ lead.name }}, about: {{ lead.details | truncate: 30 }}\nUnsubscribe: {{ unsubscribe_url }}",
      html: "<p>Hello <b>{{ lead.name }}</b></p>",
    },
  })) {
    const put = await engine.api.request("PUT", `/v1/templates/${name}`, { body: template });
    expect(put.status, JSON.stringify(put.body)).toBe(201);
  }
  const listed = await engine.api.request("GET", "/v1/channels");
  channelAnswers.push(
    JSON.stringify(listed.body),
    JSON.stringify(sms),
    JSON.stringify(email.body),
    JSON.stringify(globexEmail.body),
  );
}, 120_000);

afterAll(async () => {
  await events?.stop();
  await nc?.close();
  await engine?.stop();
  await Promise.all([
    twilio?.close(),
    slack?.close(),
    smtp?.close(),
    sendgrid?.close(),
    globexSlack?.close(),
  ]);
});

const apiOf = (tenant: keyof typeof TENANTS) => engine.api.withKey(TENANTS[tenant].apiKey);

type StepChannel = { channel: "sms" | "email" | "slack" | "hook"; template?: string };

/** Posts a lead and gives its plan's steps these channels (see the TODO above). */
async function leadWithSteps(
  lead: { name: string; phone: string; email?: string; timezone?: string },
  steps: StepChannel[],
  tenant: keyof typeof TENANTS = "acme",
) {
  const accepted = await apiOf(tenant).postLead({ ...lead, details: REFERENCE_LEADS.high.details });
  const key = leadKey({ tenant, leadId: accepted.lead_id });
  await waitFor(
    async () => {
      const entry = await plans.get(key);
      if (entry === null || entry.operation !== "PUT") return false;
      const plan = FollowupPlan.parse(entry.json());
      plan.steps = plan.steps.map((s, i) => ({ ...s, ...steps[i] }));
      await plans.update(key, JSON.stringify(plan), entry.revision);
      return true;
    },
    { description: `the plan of ${accepted.lead_id}`, timeoutMs: 5_000, intervalMs: 50 },
  );
  return accepted.lead_id;
}

function leadWhere(
  leadId: string,
  ready: (view: LeadView) => boolean,
  description: string,
  timeoutMs = 30_000,
) {
  return engine.api.leadWhere(leadId, ready, description, timeoutMs);
}

/** POSTs a Twilio webhook to lead-intake as Twilio would: the form signed over the public URL. */
async function postTwilio(publicUrl: string, form: Record<string, string>) {
  const url = new URL(publicUrl);
  const body = new URLSearchParams(form);
  return fetch(`${engine.intake.url}${url.pathname}${url.search}`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": twilioSignature(publicUrl, body, twilio.account.authToken),
    },
    body: body.toString(),
  });
}

/** The URL of a mail's List-Unsubscribe header (RFC 8058). */
function unsubscribeLink(raw: string): string {
  const match = /List-Unsubscribe:\s*<([^>]+)>/i.exec(raw);
  if (!match) throw new Error("the mail has no List-Unsubscribe header");
  return match[1]!;
}

const statusOf = (view: LeadView, step: number) => view.followups.find((f) => f.step === step)?.status;

describe("a tenant's own sequence", () => {
  it("a sequence with an SMS step, written through the API, plans the lead and delivers the rendered SMS", async () => {
    const initech = apiOf("initech");
    await putTwilioChannel(initech, twilio);
    const template = await initech.request("PUT", "/v1/templates/first-touch", {
      body: { channel: "sms", body: "Hello {{ lead.first_name | default: 'there' }}, Initech here." },
    });
    expect(template.status, JSON.stringify(template.body)).toBe(201);
    const sequence = await initech.request("PUT", "/v1/sequences/hot-leads", {
      body: {
        match: { min_pred_prob: 0.5 },
        steps: [{ delay: "2s", channel: "sms", template: "first-touch" }],
      },
    });
    expect(sequence.status, JSON.stringify(sequence.body)).toBe(201);

    const phone = "+14155550177";
    const accepted = await initech.postLead({
      name: "Peter Gibbons",
      phone,
      timezone: DAY_ZONE,
      details: REFERENCE_LEADS.high.details,
    });
    const view = await initech.leadWhere(
      accepted.lead_id,
      (v) => v.followups[0]?.status === "delivered",
      "the sequence's SMS delivered",
      30_000,
    );
    expect(view.followups.map((f) => [f.sequence, f.channel, f.template])).toEqual([
      ["hot-leads", "sms", "first-touch"],
    ]);
    expect(twilio.messages.filter((m) => m.to === phone).map((m) => m.body)).toEqual([
      "Hello Peter, Initech here.",
    ]);
  });
});

// The scenarios are independent (each its own lead, address and number; globex's Slack its own
// fake), so they run together; what the whole run left is checked after them.
describe.concurrent("channels end to end", () => {
  it("an SMS, an e-mail and a Slack step deliver three rendered messages; Twilio's status reaches the lead view", async ({
    expect,
  }) => {
    const phone = "+14155550101";
    const leadId = await leadWithSteps(
      { name: "Dana Scully", phone, email: "dana@example.com", timezone: DAY_ZONE },
      [
        { channel: "sms", template: "sms-hello" },
        { channel: "email", template: "email-hello" },
        { channel: "slack" },
      ],
    );
    const view = await leadWhere(
      leadId,
      (v) => v.followups.every((f) => f.status === "delivered"),
      "three delivered",
    );

    const sent = twilio.messages.filter((m) => m.to === phone);
    expect(sent.map((m) => m.body)).toEqual(["Hi Dana, this is follow-up 1."]);
    expect(sent[0]!.from).toBe(SMS_FROM);
    const callback = sent[0]!.statusCallback!;
    expect(callback).toMatch(
      new RegExp(`^${PUBLIC_BASE_URL}/hooks/twilio/status/acme\\?lead=${leadId}&step=1&attempt=1&replays=0$`),
    );

    const mails = smtp.mails.filter((m) => m.to.includes("dana@example.com"));
    expect(mails).toHaveLength(1);
    const mail = mails[0]!;
    expect(mail.user).toBe(SMTP_USER.user);
    expect(mail.parsed.subject).toBe("Your enquiry, Dana");
    expect(mail.parsed.text).toContain("Hello Dana Scully, about: Urgent: Need to book");
    expect(mail.parsed.html).toContain("<b>Dana Scully</b>");
    expect(unsubscribeLink(mail.raw)).toMatch(
      new RegExp(`^${PUBLIC_BASE_URL}/u/acme\\.${leadId}\\.[A-Za-z0-9_-]{43}$`),
    );
    expect(mail.raw).toMatch(/List-Unsubscribe-Post: List-Unsubscribe=One-Click/);

    const posts = slack.posts.filter((p) => p.text?.includes("Dana Scully"));
    expect(posts).toHaveLength(1);
    expect(posts[0]!.text).toMatch(/^Follow-up 3 of default for Dana Scully \(/);
    expect(view.timeline.filter((e) => e.event === "attempt_ok").map((e) => e.detail?.provider)).toEqual([
      "twilio",
      "smtp",
      "slack",
    ]);

    // Twilio reports the SMS delivered (twice, as it may): one report on the lead's timeline.
    for (const status of ["sent", "delivered", "delivered"]) {
      const answer = await postTwilio(callback, {
        MessageSid: sent[0]!.sid,
        MessageStatus: status,
        AccountSid: twilio.account.accountSid,
      });
      expect(answer.status).toBe(200);
    }
    const reported = await leadWhere(
      leadId,
      (v) => v.followups[0]?.provider_status === "delivered",
      "the SMS reported delivered",
    );
    expect(
      reported.timeline.filter((e) => e.event === "provider_report").map((e) => e.detail?.status),
    ).toEqual(["delivered"]);
    // A reference changed in the URL breaks Twilio's signature over it.
    const tampered = await fetch(
      `${engine.intake.url}${new URL(callback).pathname}?lead=${leadId}&step=2&attempt=1&replays=0`,
      {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "x-twilio-signature": twilioSignature(
            callback,
            new URLSearchParams({ MessageStatus: "failed" }),
            twilio.account.authToken,
          ),
        },
        body: "MessageStatus=failed",
      },
    );
    expect(tampered.status).toBe(403);
  }, 60_000);

  it("an e-mail step of a tenant on SendGrid sends the built-in message with its one-click headers", async ({
    expect,
  }) => {
    const address = "hank@example.com";
    const leadId = await leadWithSteps(
      { name: "Hank Scorpio", phone: "+14155550106", email: address, timezone: DAY_ZONE },
      [{ channel: "email" }, { channel: "hook" }, { channel: "hook" }],
      "globex",
    );
    await apiOf("globex").leadWhere(
      leadId,
      (v) => statusOf(v, 1) === "delivered",
      "the SendGrid e-mail delivered",
      30_000,
    );
    const mails = sendgrid.mails.filter((m) => JSON.stringify(m.body.personalizations).includes(address));
    expect(mails).toHaveLength(1);
    const body = mails[0]!.body;
    expect(body.from).toEqual({ email: "hello@globex.example" });
    expect(body.reply_to).toEqual({ email: "help@globex.example" });
    expect(body.subject).toBe("Following up on your enquiry");
    expect(body.content[0].value).toContain("Hi Hank,");
    expect(body.headers["List-Unsubscribe"]).toMatch(
      new RegExp(`^<${PUBLIC_BASE_URL}/u/globex\\.${leadId}\\.`),
    );
    expect(body.headers["List-Unsubscribe-Post"]).toBe("List-Unsubscribe=One-Click");
  }, 60_000);

  it("an inbound STOP suppresses the number: its next SMS step ends suppressed, nothing is sent", async ({
    expect,
  }) => {
    const phone = "+14155550102";
    const leadId = await leadWithSteps({ name: "Fox Mulder", phone, timezone: DAY_ZONE }, [
      { channel: "sms" },
      { channel: "hook" },
      { channel: "hook" },
    ]);
    const stop = await postTwilio(`${PUBLIC_BASE_URL}/hooks/twilio/inbound/${TENANT}`, {
      From: phone,
      To: SMS_FROM,
      Body: " stop ",
    });
    expect(stop.status).toBe(200);
    // The view shows the pending step suppressed at once; wait for its delivery to end that way.
    const endedSuppressed = (v: LeadView, step: number) =>
      statusOf(v, step) === "suppressed" &&
      v.timeline.some((e) => e.event === "suppressed" && e.step === step);
    const view = await leadWhere(leadId, (v) => endedSuppressed(v, 1), "step 1 suppressed at delivery");
    expect(view.timeline.find((e) => e.event === "suppressed")?.detail).toMatchObject({
      channel: "sms",
      reason: "suppressed",
    });
    expect(twilio.messages.filter((m) => m.to === phone)).toEqual([]);
    // Suppressed is final: no dead letter, no retry.
    expect((await engine.api.deadLetters({ lead_id: leadId })).count).toBe(0);
  }, 60_000);

  it("a one-click unsubscribe suppresses the address: the next e-mail step ends suppressed", async ({
    expect,
  }) => {
    const address = "walter@example.com";
    const leadId = await leadWithSteps(
      { name: "Walter Skinner", phone: "+14155550103", email: address, timezone: DAY_ZONE },
      [{ channel: "email" }, { channel: "email" }, { channel: "hook" }],
    );
    await leadWhere(leadId, (v) => statusOf(v, 1) === "delivered", "the first e-mail delivered");
    const mail = smtp.mails.find((m) => m.to.includes(address))!;
    expect(mail.parsed.text).toContain("Thanks for getting in touch");
    const url = unsubscribeLink(mail.raw);
    const click = await fetch(`${engine.intake.url}${new URL(url).pathname}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "List-Unsubscribe=One-Click",
    });
    expect(click.status).toBe(200);
    await leadWhere(
      leadId,
      (v) =>
        statusOf(v, 2) === "suppressed" && v.timeline.some((e) => e.event === "suppressed" && e.step === 2),
      "the second e-mail suppressed at delivery",
    );
    expect(smtp.mails.filter((m) => m.to.includes(address))).toHaveLength(1);
  }, 60_000);

  it("Twilio's 21610 suppresses the number: the step fails for good and the suppression is listed", async ({
    expect,
  }) => {
    const phone = "+15005550004";
    const leadId = await leadWithSteps({ name: "Monica Reyes", phone, timezone: DAY_ZONE }, [
      { channel: "sms" },
      { channel: "sms" },
      { channel: "hook" },
    ]);
    const view = await leadWhere(
      leadId,
      (v) =>
        statusOf(v, 1) === "failed" &&
        statusOf(v, 2) === "suppressed" &&
        v.timeline.some((e) => e.event === "suppressed" && e.step === 2),
      "the first SMS failed and the second suppressed at delivery",
    );
    expect(statusOf(view, 1)).toBe("failed");
    expect(String(view.timeline.find((e) => e.event === "dead" && e.step === 1)?.detail?.error)).toMatch(
      /code 21610/,
    );
    const listed = await engine.api.request<{ data: { suppressions: { reason: string; source: string }[] } }>(
      "GET",
      `/v1/suppressions?channel=sms&address=${encodeURIComponent(phone)}`,
    );
    expect(listed.body.data.suppressions).toEqual([
      expect.objectContaining({ reason: "provider_opt_out", source: "twilio" }),
    ]);
  }, 60_000);

  it("an SMS due at night in the lead's zone is held to the morning, not sent", async ({ expect }) => {
    const phone = "+14155550104";
    const leadId = await leadWithSteps({ name: "John Doggett", phone, timezone: zoneWhere("night") }, [
      { channel: "sms" },
      { channel: "hook" },
      { channel: "hook" },
    ]);
    const view = await leadWhere(
      leadId,
      (v) => v.timeline.some((e) => e.event === "attempt_error" && e.step === 1),
      "step 1 held",
    );
    const held = view.timeline.find((e) => e.event === "attempt_error" && e.step === 1)!;
    expect(String(held.detail?.error)).toMatch(/outside the recipient's send hours/);
    expect(Number(held.detail?.retry_in_ms)).toBeGreaterThan(60 * 60_000);
    expect(twilio.messages.filter((m) => m.to === phone)).toEqual([]);
  }, 60_000);

  it("a Slack webhook the provider says is gone (410) marks the channel broken, and the GET shows it", async ({
    expect,
  }) => {
    globexSlack.failNext("channel_is_archived");
    const globex = apiOf("globex");
    const leadId = await leadWithSteps(
      { name: "Alvin Kersh", phone: "+14155550105", timezone: DAY_ZONE },
      [{ channel: "slack" }, { channel: "hook" }, { channel: "hook" }],
      "globex",
    );
    const view = await globex.leadWhere(
      leadId,
      (v) => statusOf(v, 1) === "failed",
      "the Slack step failed",
      30_000,
    );
    expect(view.timeline.find((e) => e.event === "dead" && e.step === 1)?.detail).toMatchObject({
      status_code: 410,
    });
    const read = await waitFor(
      async () => {
        const answer = await globex.request<{
          data: { broken?: { reason: string; status_code: number } };
        }>("GET", "/v1/channels/slack");
        return answer.body.data.broken !== undefined && answer;
      },
      { description: "the Slack channel marked broken", timeoutMs: 5_000 },
    );
    expect(read.body.data.broken).toMatchObject({ reason: "channel_gone", status_code: 410 });
    channelAnswers.push(JSON.stringify(read.body));
  }, 60_000);
});

describe("what the run left", () => {
  it("no secret, name, number or address shows in the logs, the events or the answers; events keep their contracts", async () => {
    const secrets = [
      twilio.account.authToken,
      SMTP_USER.pass,
      sendgrid.apiKey,
      new URL(slackWebhook).pathname,
      new URL(globexSlackWebhook).pathname,
      CHANNEL_SECRETS_KEY,
      UNSUBSCRIBE_SECRET,
    ];
    const logs = engine.all().flatMap((s) => s.output());
    const published = events.messages.map((m) => m.text);
    for (const secret of secrets) {
      expect(logs.filter((line) => line.includes(secret))).toEqual([]);
      expect(published.filter((text) => text.includes(secret))).toEqual([]);
      expect(channelAnswers.filter((text) => text.includes(secret))).toEqual([]);
    }
    for (const personal of [
      "+14155550101",
      "dana@example.com",
      "Dana Scully",
      "walter@example.com",
      "hank@example.com",
    ]) {
      expect(published.filter((text) => text.includes(personal))).toEqual([]);
    }
    expect(channelAnswers[0]).toContain("****");
    const violations = contractViolations(events.messages);
    expect(violations, JSON.stringify(violations, null, 1)).toEqual([]);
  });
});
