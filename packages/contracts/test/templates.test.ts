import { describe, expect, it } from "vitest";
import { describeIssues, TEMPLATE_EXAMPLE, Template, templateKey } from "../src/index.js";

const problems = (body: unknown) => {
  const result = Template.safeParse(body);
  return result.success ? [] : describeIssues(result.error);
};

describe("Template", () => {
  it("takes the documented example, and an e-mail with subject and html", () => {
    expect(Template.parse(TEMPLATE_EXAMPLE)).toEqual(TEMPLATE_EXAMPLE);
    const email = { channel: "email", subject: "Hi", body: "Hi", html: "<p>Hi</p>" };
    expect(Template.parse(email)).toEqual(email);
  });

  it.each([
    [
      "an e-mail without subject",
      { channel: "email", body: "x" },
      "subject",
      "is required for an email template",
    ],
    [
      "html on an SMS",
      { channel: "sms", body: "x", html: "<p>" },
      "html",
      "is only for email templates, not sms",
    ],
    [
      "a subject on a hook",
      { channel: "hook", body: "x", subject: "s" },
      "subject",
      "is only for email templates, not hook",
    ],
    ["an empty body", { channel: "slack", body: "" }, "body", "must not be empty"],
    [
      "an unknown channel",
      { channel: "fax", body: "x" },
      "channel",
      "must be one of hook, sms, email, slack",
    ],
  ])("refuses %s, naming the field", (_what, body, path, message) => {
    expect(problems(body)).toEqual([{ path, message }]);
  });

  it("keys a template by tenant and name, refusing a name that breaks the rule", () => {
    expect(templateKey("acme", "first-touch")).toBe("acme.first-touch");
    expect(() => templateKey("acme", "A.b")).toThrow();
    expect(() => templateKey("a.b", "x")).toThrow();
  });
});
