import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { parseWebhookSecret, signWebhook, verifyWebhook, webhookHeaders } from "../src/index.js";

const secret = `whsec_${randomBytes(32).toString("base64")}`;
const key = parseWebhookSecret(secret);
const body = JSON.stringify({ lead_id: "L1", strategy: "1800s", message: "Auto follow-up at +1800s" });

describe("Standard Webhooks signatures", () => {
  it("are accepted by the reference implementation", () => {
    const headers = webhookHeaders(key, "acme:L1:1", body);
    const reference = new Webhook(secret);
    expect(reference.verify(body, { ...headers })).toEqual(JSON.parse(body));
  });

  it("accept what the reference implementation signs", () => {
    const reference = new Webhook(secret);
    const now = new Date();
    const signature = reference.sign("acme:L1:2", now, body);
    const result = verifyWebhook(
      key,
      {
        "webhook-id": "acme:L1:2",
        "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
        "webhook-signature": signature,
      },
      body,
    );
    expect(result).toMatchObject({ ok: true, id: "acme:L1:2" });
  });

  it("refuse a changed body, id, or key", () => {
    const headers = webhookHeaders(key, "acme:L1:1", body);
    expect(verifyWebhook(key, headers, `${body} `)).toEqual({ ok: false, reason: "bad_signature" });
    expect(verifyWebhook(key, { ...headers, "webhook-id": "acme:L1:2" }, body)).toEqual({
      ok: false,
      reason: "bad_signature",
    });
    expect(verifyWebhook(randomBytes(32), headers, body)).toEqual({ ok: false, reason: "bad_signature" });
    expect(verifyWebhook(key, { ...headers, "webhook-signature": "v1,AAAA" }, body)).toEqual({
      ok: false,
      reason: "bad_signature",
    });
    expect(verifyWebhook(key, { ...headers, "webhook-signature": "v2,abc" }, body).ok).toBe(false);
  });

  it("refuse timestamps outside the tolerance, either way, and malformed ones", () => {
    const old = new Date(Date.now() - 301_000);
    const future = new Date(Date.now() + 301_000);
    expect(verifyWebhook(key, webhookHeaders(key, "i", body, old), body)).toEqual({
      ok: false,
      reason: "timestamp_out_of_tolerance",
    });
    expect(verifyWebhook(key, webhookHeaders(key, "i", body, future), body).ok).toBe(false);
    expect(verifyWebhook(key, webhookHeaders(key, "i", body, new Date(Date.now() - 290_000)), body).ok).toBe(
      true,
    );
    const headers = webhookHeaders(key, "i", body);
    expect(verifyWebhook(key, { ...headers, "webhook-timestamp": "12e3" }, body)).toEqual({
      ok: false,
      reason: "bad_timestamp",
    });
    expect(verifyWebhook(key, { "webhook-id": "i" }, body)).toEqual({ ok: false, reason: "missing_headers" });
  });

  it("accept any one of several signatures (secret rotation)", () => {
    const headers = webhookHeaders(key, "i", body);
    const other = signWebhook(randomBytes(32), "i", Number(headers["webhook-timestamp"]), body);
    expect(
      verifyWebhook(
        key,
        { ...headers, "webhook-signature": `${other} ${headers["webhook-signature"]}` },
        body,
      ).ok,
    ).toBe(true);
  });

  it("secrets must be whsec_ + base64 of at least 24 bytes", () => {
    expect(() => parseWebhookSecret("plain-secret")).toThrow(/whsec_/);
    expect(() => parseWebhookSecret("whsec_!!!")).toThrow(/base64/);
    expect(() => parseWebhookSecret(`whsec_${randomBytes(8).toString("base64")}`)).toThrow(/24 bytes/);
  });
});
