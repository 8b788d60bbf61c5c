import {
  MAX_TEMPLATES_PER_TENANT,
  TEMPLATE_EXAMPLE,
  TemplateList,
  TemplateRecord,
  TemplateView,
} from "@followup/contracts";
import type { NatsServer } from "@followup/nats-harness";
import { type KV, Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ACME_KEY,
  ALEX,
  type ApiCall,
  apiCall,
  detailsOf,
  expectFieldRefused,
  freshName,
  GLOBEX_KEY,
  type Intake,
  startIntake,
  startIntakeWithServer,
  stopIntakeWithServer,
} from "./fixtures.js";

let server: NatsServer;
let intake: Intake;
let bucket: KV;
const NOW = new Date("2026-03-02T15:04:05.000Z");
const PUBLIC_BASE_URL = "https://followup.example.com/base/";

beforeAll(async () => {
  ({ server, intake } = await startIntakeWithServer({ now: () => NOW, env: { PUBLIC_BASE_URL } }));
  bucket = await new Kvm(intake.nc!).open("templates");
});

afterAll(async () => {
  await stopIntakeWithServer(intake, server);
});

const SMS = TEMPLATE_EXAMPLE;
const EMAIL = {
  channel: "email",
  subject: "Hi {{ lead.first_name }}",
  body: "Hi {{ lead.name }}, about: {{ lead.details }}\nUnsubscribe: {{ unsubscribe_url }}",
  html: '<p>Hi {{ lead.name }}</p><a href="{{ unsubscribe_url }}">unsubscribe</a>',
};

type Call = ApiCall;
const fresh = freshName;

const call = (
  method: "GET" | "PUT" | "POST" | "DELETE",
  url: string,
  options: Parameters<typeof apiCall>[3] & { app?: Intake } = {},
) => apiCall((options.app ?? intake).app, method, url, options);

const put = (name: string, body: unknown, options: { key?: string; ifMatch?: string } = {}) =>
  call("PUT", `/v1/templates/${name}`, { body, ...options });
const get = (name: string, key?: string) => call("GET", `/v1/templates/${name}`, key ? { key } : {});
const preview = (name: string, leadId: string, key?: string) =>
  call("POST", `/v1/templates/${name}/preview`, { body: { lead_id: leadId }, ...(key ? { key } : {}) });
const view = (c: Call) => TemplateView.parse(c.body.data);

async function storedValue(tenant: string, name: string): Promise<unknown> {
  const entry = await bucket.get(`${tenant}.${name}`);
  return entry === null || entry.operation !== "PUT" ? null : entry.json();
}

async function postLead(lead: Record<string, unknown>, key = ACME_KEY): Promise<string> {
  const res = await call("POST", "/v1/lead", { body: lead, key });
  expect(res.status).toBe(200);
  return (res.body.data as { lead_id: string }).lead_id;
}

describe("PUT, GET, list, replace and delete against a real nats-server", () => {
  it("creates an SMS template (201) with its revision as a quoted ETag, and reads it back", async () => {
    const name = fresh("first-touch");
    const created = await put(name, SMS);
    expect(created.status).toBe(201);
    const data = view(created);
    expect(data).toEqual({ ...SMS, name, updated_at: NOW.toISOString(), revision: data.revision });
    expect(created.etag).toBe(`"${data.revision}"`);
    expect(created.body.data).not.toHaveProperty("tenant");
    expect(TemplateRecord.parse(await storedValue("acme", name))).toEqual({
      ...SMS,
      tenant: "acme",
      name,
      updated_at: NOW.toISOString(),
    });
    const read = await get(name);
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual(created.body.data);
    expect(read.etag).toBe(created.etag);
  });

  it("replaces (200) under a new revision, lists by name, deletes", async () => {
    const names = [fresh("zz"), fresh("aa")];
    for (const name of names) expect((await put(name, EMAIL)).status).toBe(201);
    const first = view(await get(names[0]!));
    const replaced = await put(names[0]!, { ...EMAIL, subject: "New" });
    expect(replaced.status).toBe(200);
    expect(view(replaced).revision).toBeGreaterThan(first.revision);
    expect(view(await get(names[0]!)).subject).toBe("New");

    const listed = TemplateList.parse((await call("GET", "/v1/templates")).body.data);
    const listedNames = listed.templates.map((t) => t.name);
    expect(listed.count).toBe(listed.templates.length);
    expect(listedNames).toEqual([...listedNames].sort());
    for (const name of names) expect(listedNames).toContain(name);

    const deleted = await call("DELETE", `/v1/templates/${names[1]}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.data).toEqual({ name: names[1], deleted: true });
    expect(await storedValue("acme", names[1]!)).toBeNull();
    expect((await get(names[1]!)).status).toBe(404);
    expect((await call("DELETE", `/v1/templates/${names[1]}`)).status).toBe(404);
    const after = TemplateList.parse((await call("GET", "/v1/templates")).body.data).templates;
    expect(after.map((t) => t.name)).not.toContain(names[1]);
  });

  it("a stale If-Match is 412 and changes nothing; the current one replaces", async () => {
    const name = fresh("stale");
    const first = view(await put(name, SMS));
    const second = view(await put(name, { ...SMS, body: "Second" }));
    const before = await storedValue("acme", name);
    const stale = await put(name, { ...SMS, body: "Third" }, { ifMatch: `"${first.revision}"` });
    expect(stale.status).toBe(412);
    expect(stale.body.error?.code).toBe("revision_mismatch");
    expect(stale.body.error?.message).toContain(`template ${name} is at revision ${second.revision}`);
    expect(stale.etag).toBe(`"${second.revision}"`);
    expect(await storedValue("acme", name)).toEqual(before);
    const staleDelete = await call("DELETE", `/v1/templates/${name}`, { ifMatch: String(first.revision) });
    expect(staleDelete.status).toBe(412);
    expect(await storedValue("acme", name)).toEqual(before);

    const current = await put(name, { ...SMS, body: "Third" }, { ifMatch: `"${second.revision}"` });
    expect(current.status).toBe(200);
    expect(view(await get(name)).body).toBe("Third");
    expect((await put(fresh("never"), SMS, { ifMatch: "*" })).status).toBe(412);
  });

  it("a name that breaks the rule is 400 naming `name`", async () => {
    for (const res of [await get("Not_Valid"), await put("a.b", SMS), await preview("UPPER", "x")]) {
      expect(res.status).toBe(400);
      expect(res.body.error?.details).toEqual([
        { path: "name", message: "must be 1-64 characters of a-z, 0-9, '_' or '-'" },
      ]);
    }
  });
});

describe("tenants", () => {
  it("another tenant's template is not found, cannot be replaced, deleted or previewed", async () => {
    const name = fresh("acme-own");
    const acme = view(await put(name, SMS));
    const before = await storedValue("acme", name);
    const globexLead = await postLead(ALEX, GLOBEX_KEY);

    const read = await get(name, GLOBEX_KEY);
    expect(read.status).toBe(404);
    expect(read.body.error?.message).toBe("template not found");
    const replace = await put(name, SMS, { key: GLOBEX_KEY, ifMatch: `"${acme.revision}"` });
    expect(replace.status).toBe(412);
    expect(replace.etag).toBeUndefined();
    expect((await call("DELETE", `/v1/templates/${name}`, { key: GLOBEX_KEY })).status).toBe(404);
    const previewed = await preview(name, globexLead, GLOBEX_KEY);
    expect(previewed.status).toBe(404);
    expect(previewed.body.error?.message).toBe("template not found");

    expect(await storedValue("acme", name)).toEqual(before);
    expect(await storedValue("globex", name)).toBeNull();
    const globexNames = TemplateList.parse(
      (await call("GET", "/v1/templates", { key: GLOBEX_KEY })).body.data,
    ).templates.map((t) => t.name);
    expect(globexNames).not.toContain(name);
  });

  it(`a tenant has at most ${MAX_TEMPLATES_PER_TENANT} templates: one more is 409`, async () => {
    const crowded = await startIntake({ server, env: { API_KEYS: "crowd-key:crowd" } });
    try {
      const putAs = (name: string) =>
        call("PUT", `/v1/templates/${name}`, { app: crowded, key: "crowd-key", body: SMS });
      // All but the last straight into the bucket (a PUT each would take seconds), then by the API.
      const record = { ...SMS, tenant: "crowd", updated_at: NOW.toISOString() };
      for (let i = 0; i < MAX_TEMPLATES_PER_TENANT - 1; i++) {
        await bucket.put(`crowd.t${i}`, JSON.stringify(TemplateRecord.parse({ ...record, name: `t${i}` })));
      }
      expect((await putAs(`t${MAX_TEMPLATES_PER_TENANT - 1}`)).status).toBe(201);
      const refused = await putAs("one-more");
      expect(refused.status).toBe(409);
      expect(refused.body.error?.message).toContain(`${MAX_TEMPLATES_PER_TENANT} templates`);
      expect(await bucket.get("crowd.one-more")).toBeNull();
      expect((await putAs("t0")).status).toBe(200);
    } finally {
      await crowded.close();
    }
  });

  it("without a valid x-api-key every route is 401", async () => {
    const name = fresh("anon");
    for (const res of [
      await call("GET", "/v1/templates", { key: null }),
      await call("PUT", `/v1/templates/${name}`, { key: null, body: SMS }),
      await call("POST", `/v1/templates/${name}/preview`, { key: "nope", body: { lead_id: "x" } }),
      await call("DELETE", `/v1/templates/${name}`, { key: null }),
    ]) {
      expect(res.status).toBe(401);
    }
    expect(await storedValue("acme", name)).toBeNull();
  });
});

describe("validation: checked against a sample lead when saved, each problem named", () => {
  it.each([
    [
      "a syntax error",
      { channel: "sms", body: 'Hi {{ lead.first_name | default: "there" }},\nwe {% if step > 1 %}again' },
      "body",
      /^line 2, column 4: tag \{% if step > 1 %\} not closed$/,
    ],
    [
      "an unknown variable",
      { channel: "sms", body: "Hi\n  {{ lead.nmae }}" },
      "body",
      /^line 2, column 6: unknown variable lead\.nmae; sms templates have lead\.name, lead\.first_name, /,
    ],
    [
      "an unknown variable in the subject",
      { ...EMAIL, subject: "{{ step }} {{ steps }}" },
      "subject",
      /^line 1, column 15: unknown variable steps;/,
    ],
    [
      "unsubscribe_url outside e-mail",
      { channel: "slack", body: "{{ unsubscribe_url }}" },
      "body",
      /^line 1, column 4: unknown variable unsubscribe_url;/,
    ],
    [
      "an unknown filter in the html",
      { ...EMAIL, html: "<p>{{ lead.name | shout }}</p>" },
      "html",
      /^line 1, column 4: undefined filter: shout$/,
    ],
    [
      "an e-mail without a subject",
      { channel: "email", body: "Hi" },
      "subject",
      /^is required for an email template$/,
    ],
    ["html on an SMS", { ...SMS, html: "<p>x</p>" }, "html", /^is only for email templates, not sms$/],
    [
      "a subject on Slack",
      { channel: "slack", subject: "x", body: "x" },
      "subject",
      /^is only for email templates, not slack$/,
    ],
    [
      "an SMS body over 1600 characters",
      { channel: "sms", body: `${"x".repeat(1590)} {{ lead.name }}` },
      "body",
      /^renders to 1602 characters; the sms body may have at most 1600$/,
    ],
    ["an unknown channel", { channel: "fax", body: "x" }, "channel", /hook, sms, email, slack/],
    ["an empty body", { channel: "sms", body: "" }, "body", /^must not be empty$/],
    ["an unknown field", { ...SMS, bdy: "x" }, "(root)", /bdy/],
  ])("%s: 400 validation_error naming the field", async (_what, body, path, message) => {
    const name = fresh("invalid");
    expectFieldRefused(await put(name, body), path, message);
    expect(await storedValue("acme", name)).toBeNull();
  });

  it("names a problem in each field at once", async () => {
    const res = await put(fresh("two"), { ...EMAIL, subject: "{{ nope }}", html: "{% if %}" });
    expect(res.status).toBe(400);
    expect(detailsOf(res).map((d) => d.path)).toEqual(["subject", "html"]);
  });
});

describe("POST /v1/templates/:name/preview", () => {
  it("renders an SMS for a real lead: the lead's first name, the default for none", async () => {
    const name = fresh("preview-sms");
    await put(name, SMS);
    const leadId = await postLead(ALEX);
    const res = await preview(name, leadId);
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({
      body: "Hi Alex, thanks for getting in touch. When suits you for a call?",
    });
    const withStep = fresh("preview-step");
    await put(withStep, {
      channel: "slack",
      body: "{{ lead.name }}: step {{ step }} of {{ sequence }}, {{ lead.urgency }}",
    });
    expect((await preview(withStep, leadId)).body.data).toEqual({
      body: "Alex Rivera: step 1 of preview, high",
    });
  });

  it("escapes an HTML-hostile name in the e-mail's html only", async () => {
    const name = fresh("preview-email");
    await put(name, EMAIL);
    const hostile = "<script>alert(1)</script> Mallory";
    const leadId = await postLead({ ...ALEX, name: hostile, email: "m@example.com" });
    const res = await preview(name, leadId);
    expect(res.status).toBe(200);
    const unsubscribe = "https://followup.example.com/base/unsubscribe/preview";
    expect(res.body.data).toEqual({
      subject: "Hi <script>alert(1)</script>",
      body: `Hi ${hostile}, about: ${ALEX.details}\nUnsubscribe: ${unsubscribe}`,
      html: `<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; Mallory</p><a href="${unsubscribe}">unsubscribe</a>`,
    });
  });

  it("another tenant's lead, or no lead, is 404 lead not found", async () => {
    const name = fresh("preview-404");
    await put(name, SMS);
    const globexLead = await postLead(ALEX, GLOBEX_KEY);
    for (const leadId of [globexLead, "no-such-lead"]) {
      const res = await preview(name, leadId);
      expect(res.status).toBe(404);
      expect(res.body.error?.message).toBe("lead not found");
    }
    expect((await preview(fresh("missing"), globexLead)).body.error?.message).toBe("template not found");
    const bad = await call("POST", `/v1/templates/${name}/preview`, { body: { lead: "x" } });
    expect(bad.status).toBe(400);
    expect(
      detailsOf(bad)
        .map((d) => d.path)
        .sort(),
    ).toEqual(["(root)", "lead_id"]);
  });

  it("a template too long for this lead is 400 naming the field", async () => {
    const name = fresh("preview-long");
    // 1550 characters and the details: fine for the sample lead, too long for this one.
    await put(name, { channel: "sms", body: `${"x".repeat(1500)} {{ lead.details }}` });
    const leadId = await postLead({ ...ALEX, details: "y".repeat(200) });
    const res = await preview(name, leadId);
    expect(res.status).toBe(400);
    expect(detailsOf(res)).toEqual([
      { path: "body", message: "renders to 1701 characters; the sms body may have at most 1600" },
    ]);
  });
});

describe("PUT /v1/sequences checks its steps' templates", () => {
  it.each([
    ["a missing template", "sms", "does-not-exist", /template does-not-exist does not exist/],
    [
      "a template of another channel",
      "email",
      "sms-one",
      /template sms-one is for sms; this step's channel is email/,
    ],
  ])("%s is 400 naming steps.N.template", async (_what, channel, template, message) => {
    expect((await put("sms-one", SMS)).status).toBeLessThan(300);
    const sequence = fresh("seq");
    const res = await call("PUT", `/v1/sequences/${sequence}`, {
      body: {
        steps: [
          { delay: "30m", channel: "sms", template: "sms-one" },
          { delay: "1h", channel: "hook" },
          { delay: "1d", channel, template },
        ],
      },
    });
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe("validation_error");
    expect(detailsOf(res).map((d) => d.path)).toEqual(["steps.2.template"]);
    expect(detailsOf(res)[0]!.message).toMatch(message);
    expect((await call("GET", `/v1/sequences/${sequence}`)).status).toBe(404);
  });

  it("another tenant's template does not count; the tenant's own of the step's channel does", async () => {
    const name = fresh("globex-tpl");
    expect((await put(name, SMS, { key: GLOBEX_KEY })).status).toBe(201);
    const body = { steps: [{ delay: "30m", channel: "sms", template: name }] };
    const refused = await call("PUT", `/v1/sequences/${fresh("seq")}`, { body });
    expect(refused.status).toBe(400);
    expect(detailsOf(refused).map((d) => d.path)).toEqual(["steps.0.template"]);
    expect((await call("PUT", `/v1/sequences/${fresh("seq")}`, { body, key: GLOBEX_KEY })).status).toBe(201);
  });
});
