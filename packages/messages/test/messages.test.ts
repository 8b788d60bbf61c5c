import type { StoredLead } from "@followup/contracts";
import { describe, expect, it } from "vitest";
import {
  BUILT_IN_TEMPLATES,
  builtInMessage,
  checkTemplate,
  MessageRenderError,
  type MessageTemplate,
  messageVariables,
  RENDER_LIMIT_MS,
  renderMessage,
  sampleVariables,
} from "../src/index.js";

const LEAD: StoredLead = {
  lead_id: "018f0000-0000-7000-8000-000000000001",
  tenant: "acme",
  name: "Alex Rivera",
  phone: "+1-555-0199",
  email: "alex@example.com",
  details: "Need to book for tomorrow.",
  enrichment: { intent: "lead_capture", sentiment: "positive", urgency: "high", score: 0.8 },
  pred_prob: 0.9,
  model_version: "v1",
  created_at: "2026-03-02T15:04:05.000Z",
  outcome: { outcome: "ghosted", recorded_at: "2026-03-02T15:04:05.000Z" },
};
const CONTEXT = { step: 2, sequence: "welcome", unsubscribeUrl: "https://x.test/u?a=1&b=2" };

const sms = (body: string): MessageTemplate => ({ channel: "sms", body });
const vars = (lead: Partial<StoredLead> = {}) => messageVariables({ ...LEAD, ...lead }, CONTEXT);

describe("messageVariables", () => {
  it("gives the listed variables only, first_name from the name", () => {
    expect(vars()).toEqual({
      lead: {
        name: "Alex Rivera",
        first_name: "Alex",
        email: "alex@example.com",
        phone: "+1-555-0199",
        details: "Need to book for tomorrow.",
        intent: "lead_capture",
        urgency: "high",
      },
      step: 2,
      sequence: "welcome",
      unsubscribe_url: "https://x.test/u?a=1&b=2",
    });
    const { email: _email, ...noEmail } = LEAD;
    expect(messageVariables(noEmail, { step: 1, sequence: "s" })).not.toHaveProperty("lead.email");
    expect(messageVariables(noEmail, { step: 1, sequence: "s" })).not.toHaveProperty("unsubscribe_url");
    expect(vars({ name: "  Bo  " }).lead.first_name).toBe("Bo");
  });
});

describe("renderMessage", () => {
  it.each([
    [
      "a variable",
      "Hi {{ lead.first_name }}, step {{ step }} of {{ sequence }}",
      "Hi Alex, step 2 of welcome",
    ],
    ["default with a value", '{{ lead.first_name | default: "there" }}', "Alex"],
    ["default for a blank name", '{{ lead.first_name | default: "there" }}', "there", { name: " " }],
    ["default for a missing e-mail", '{{ lead.email | default: "none" }}', "none", { email: undefined }],
    ["no HTML escaping in text", "{{ lead.name }}", "<b>Al</b> & co", { name: "<b>Al</b> & co" }],
    [
      "inherited properties are not reachable",
      "[{{ lead.constructor }}{{ lead.__proto__ }}{{ step.constructor.constructor }}{{ lead.name.toString }}]",
      "[]",
    ],
    [
      "nothing of the lead beyond the listed fields",
      "[{{ lead.tenant }}{{ lead.pred_prob }}{{ lead.outcome }}{{ lead.lead_id }}]",
      "[]",
    ],
  ] as const)("%s", (_what, body, expected, lead?: Partial<StoredLead>) => {
    expect(renderMessage(sms(body), vars(lead)).body).toBe(expected);
  });

  it("escapes e-mail HTML only: the subject and the text part stay as written", () => {
    const hostile = "<script>alert(1)</script>";
    const message = renderMessage(
      {
        channel: "email",
        subject: "For {{ lead.name }}",
        body: "Hi {{ lead.name }}",
        html: '<p>Hi {{ lead.name }}</p><a href="{{ unsubscribe_url }}">x</a>',
      },
      vars({ name: hostile }),
    );
    expect(message).toEqual({
      subject: `For ${hostile}`,
      body: `Hi ${hostile}`,
      html: '<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p><a href="https://x.test/u?a=1&amp;b=2">x</a>',
    });
  });

  it.each([
    ["an output", "{{ lead.name }}"],
    ["echo", "{% echo lead.name %}"],
    ["echo in a liquid tag", "{% liquid echo lead.name %}"],
    ["an assigned copy", "{% assign copy = lead.name %}{{ copy }}"],
    ["a filter's result", "{{ lead.name | append: '' }}"],
    ["cycle", "{% cycle lead.name %}"],
  ])("escapes every way a value reaches e-mail HTML: %s", (_what, html) => {
    const message = renderMessage(
      { channel: "email", subject: "s", body: "b", html },
      vars({ name: `"><img src=x onerror='alert(1)'>` }),
    );
    expect(message.html).toBe("&#34;&gt;&lt;img src=x onerror=&#39;alert(1)&#39;&gt;");
  });

  it("keeps a subject on one line whatever the name holds", () => {
    const message = renderMessage(
      { channel: "email", subject: "Re: {{ lead.name }}", body: "x" },
      vars({ name: "Alex\r\nBcc: evil@example.com" }),
    );
    expect(message.subject).toBe("Re: Alex Bcc: evil@example.com");
  });

  it("refuses an SMS over 1600 characters, naming the limit", () => {
    expect(renderMessage(sms("x".repeat(1600)), vars()).body).toHaveLength(1600);
    expect(() => renderMessage(sms(`${"x".repeat(1590)} {{ lead.name }}`), vars())).toThrow(
      /body: renders to 1602 characters; the sms body may have at most 1600/,
    );
    expect(() => renderMessage({ channel: "slack", body: "y".repeat(40_001) }, vars())).toThrow(
      /at most 40000/,
    );
  });

  it("a loop bomb hits the render limit and fails fast", () => {
    const bomb = sms(
      "{% for a in (1..1000) %}{% for b in (1..1000) %}{% for c in (1..1000) %}x{% endfor %}{% endfor %}{% endfor %}",
    );
    const started = Date.now();
    expect(() => renderMessage(bomb, vars())).toThrow(MessageRenderError);
    expect(() => renderMessage(bomb, vars())).toThrow(/template render limit exceeded/);
    expect(Date.now() - started).toBeLessThan(2 * RENDER_LIMIT_MS + 2000);
    expect(() => renderMessage(sms("{% for i in (1..100000000) %}x{% endfor %}"), vars())).toThrow(
      /memory alloc limit exceeded/,
    );
  });

  it("reads no file: include, render and layout are not tags, raw is not a filter", () => {
    for (const body of ["{% include 'x' %}", "{% render '/etc/passwd' %}", "{% layout 'x' %}"]) {
      expect(() => renderMessage(sms(body), vars())).toThrow(/tag "(include|render|layout)" not found/);
    }
    expect(() => renderMessage(sms("{{ lead.name | raw }}"), vars())).toThrow(/undefined filter: raw/);
  });
});

describe("checkTemplate", () => {
  it.each([
    ["a good SMS", sms('Hi {{ lead.first_name | default: "there" }}'), []],
    [
      "an unclosed output",
      sms("Hi\n  {{ lead.name "),
      [{ field: "body", line: 2, column: 3, message: 'output "{{ lead.name " not closed' }],
    ],
    [
      "a tag without its expression",
      sms("one\ntwo {% if %}x{% endif %}"),
      [{ field: "body", line: 2, column: 10, message: 'invalid value expression: ""' }],
    ],
    [
      "an unknown filter",
      sms("{{ lead.name | shout }}"),
      [{ field: "body", line: 1, column: 1, message: "undefined filter: shout" }],
    ],
    [
      "an SMS that renders too long for the sample lead",
      sms(`${"x".repeat(1599)}{{ lead.name }}`),
      [{ field: "body", message: "renders to 1610 characters; the sms body may have at most 1600" }],
    ],
    [
      "an e-mail whose html is broken and whose subject is fine",
      { channel: "email", subject: "Hi {{ lead.name }}", body: "x", html: "<p>{% for %}</p>" },
      [{ field: "html", line: 1, column: 4, message: "illegal tag: {% for %}" }],
    ],
  ] as const)("%s", (_what, template, expected) => {
    expect(checkTemplate(template as MessageTemplate)).toEqual(expected);
  });

  it("names an unknown variable with its line and column, in every branch", () => {
    const problems = checkTemplate(
      sms(
        'Hi {{ lead.first_name | default: "x" }},\n{% if step > 3 %}  {{ lead.nmae }}{% endif %} {{ lead_name }}',
      ),
    );
    expect(problems.map(({ field, line, column }) => ({ field, line, column }))).toEqual([
      { field: "body", line: 2, column: 23 },
      { field: "body", line: 2, column: 50 },
    ]);
    expect(problems[0]!.message).toMatch(/^unknown variable lead\.nmae; sms templates have lead\.name, /);
    expect(problems[1]!.message).toMatch(/^unknown variable lead_name;/);
  });

  it("unsubscribe_url is the e-mail's only", () => {
    expect(checkTemplate(sms("{{ unsubscribe_url }}"))[0]).toMatchObject({
      field: "body",
      line: 1,
      column: 4,
      message: expect.stringMatching(/^unknown variable unsubscribe_url;/),
    });
    expect(checkTemplate({ channel: "email", subject: "s", body: "{{ unsubscribe_url }}" })).toEqual([]);
  });

  it("a property a variable does not have fails the sample render, located", () => {
    expect(checkTemplate(sms("ab {{ lead.name.foo }}"))).toEqual([
      { field: "body", line: 1, column: 7, message: "undefined variable: lead.name.foo" },
    ]);
  });

  it("locals assigned in the template are not unknown", () => {
    expect(
      checkTemplate(
        sms(
          "{% assign who = lead.first_name %}{% for i in (1..2) %}{{ who }}{{ forloop.index }}{% endfor %}",
        ),
      ),
    ).toEqual([]);
  });
});

describe("builtInMessage", () => {
  it("every built-in template passes its own check", () => {
    for (const template of Object.values(BUILT_IN_TEMPLATES)) expect(checkTemplate(template)).toEqual([]);
  });

  it("has a message per channel, the hook keeps its payload", () => {
    expect(builtInMessage("sms", vars())?.body).toMatch(/^Hi Alex, /);
    expect(builtInMessage("sms", vars({ name: " " }))?.body).toMatch(/^Hi there, /);
    const email = builtInMessage("email", vars({ name: "<i>Al</i>" }))!;
    expect(email.subject).toBeTruthy();
    expect(email.html).toContain("Hi &lt;i&gt;Al&lt;/i&gt;");
    expect(email.html).toContain('href="https://x.test/u?a=1&amp;b=2"');
    expect(email.body).toContain("https://x.test/u?a=1&b=2");
    expect(builtInMessage("slack", vars())?.body).toContain("Alex Rivera");
    expect(builtInMessage("hook", vars())).toBeNull();
    expect(sampleVariables("sms")).not.toHaveProperty("unsubscribe_url");
  });
});
