import { HookReceipt, idempotencyKey } from "@followup/contracts";
import type { NatsServer } from "@followup/nats-harness";
import { signWebhook, webhookHeaders } from "@followup/service-kit";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { receiptKey } from "../src/hook/receipts.js";
import {
  ACME_KEY,
  GLOBEX_KEY,
  type Intake,
  KEY,
  startIntakeWithServer,
  stopIntakeWithServer,
  streamMessages,
} from "./fixtures.js";

let server: NatsServer;
let intake: Intake;

beforeAll(async () => {
  ({ server, intake } = await startIntakeWithServer());
});

afterAll(() => stopIntakeWithServer(intake, server));

const ACK = { ok: true, message: "Follow-up hook received" };
let counter = 0;

/** The body the dispatcher sends for one follow-up. */
function payload(leadId: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    lead_id: leadId,
    strategy: "1800s",
    message: "Auto follow-up at +1800s",
    ts: new Date().toISOString(),
    tenant: "acme",
    step: 1,
    due_at: new Date().toISOString(),
    attempt: 1,
    ...extra,
  });
}

function uniqueLead(): string {
  counter += 1;
  return `L-hook-${counter}-${Date.now()}`;
}

async function post(body: string, headers: object) {
  return intake.app.inject({
    method: "POST",
    url: "/ops/followup-hook",
    headers: { "content-type": "application/json", ...(headers as Record<string, string>) },
    payload: body,
  });
}

async function receipts(): Promise<number> {
  return streamMessages(intake.jsm!, "KV_hook_receipts");
}

async function hookCount(auth: string, duplicate: boolean): Promise<number> {
  const metric = await intake.metrics.hooks.get();
  return (
    metric.values.find((v) => v.labels.auth === auth && v.labels.duplicate === String(duplicate))?.value ?? 0
  );
}

describe("POST /ops/followup-hook, signed Standard Webhooks style", () => {
  it("accepts a signed call, answers exactly the old acknowledgement and records a receipt", async () => {
    const leadId = uniqueLead();
    const id = idempotencyKey({ tenant: "acme", leadId, step: 1 });
    const body = payload(leadId);
    const before = await hookCount("signature", false);
    // A bogus x-api-key beside a valid signature changes nothing.
    const res = await post(body, { ...webhookHeaders(KEY, id, body), "x-api-key": "bogus" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(ACK);
    expect(res.body).toBe(JSON.stringify(ACK));

    const kv = await new Kvm(intake.nc!).open("hook_receipts");
    const entry = await kv.get(receiptKey("acme", leadId, id));
    const receipt = HookReceipt.parse(entry?.json());
    expect(receipt).toMatchObject({
      webhook_id: id,
      tenant: "acme",
      lead_id: leadId,
      step: 1,
      strategy: "1800s",
      attempt: 1,
      auth: "signature",
    });
    expect(receiptKey("acme", leadId, id)).toMatch(new RegExp(`^acme\\.${leadId}\\.[0-9a-f]{32}$`));
    expect((await hookCount("signature", false)) - before).toBe(1);
  });

  it("records a replay once: the same webhook-id twice (even re-signed later) is acknowledged twice", async () => {
    const leadId = uniqueLead();
    const id = idempotencyKey({ tenant: "acme", leadId, step: 2 });
    const first = payload(leadId, { step: 2, attempt: 1 });
    const before = await receipts();
    const dupBefore = await hookCount("signature", true);
    const a = await post(first, webhookHeaders(KEY, id, first));
    const b = await post(first, webhookHeaders(KEY, id, first));
    // The dispatcher's retry: same webhook-id, new attempt, new timestamp and signature.
    const retry = payload(leadId, { step: 2, attempt: 2 });
    const c = await post(retry, webhookHeaders(KEY, id, retry, new Date(Date.now() + 2000)));
    expect([a.statusCode, b.statusCode, c.statusCode]).toEqual([200, 200, 200]);
    for (const res of [a, b, c]) expect(res.json()).toEqual(ACK);
    expect((await receipts()) - before).toBe(1);
    expect((await hookCount("signature", true)) - dupBefore).toBe(2);
  });

  it.each([
    [
      "a wrong signature",
      (id: string, body: string) => ({ ...webhookHeaders(KEY, id, body), "webhook-signature": "v1,AAAA" }),
      /does not match/,
    ],
    [
      "another secret's signature",
      (id: string, body: string) => webhookHeaders(Buffer.alloc(32, 9), id, body),
      /does not match/,
    ],
    [
      "a body changed after signing",
      (id: string, body: string) => webhookHeaders(KEY, id, body.replace("1800s", "60s")),
      /does not match/,
    ],
    [
      "a signature of another webhook-id",
      (id: string, body: string) => ({ ...webhookHeaders(KEY, `${id}x`, body), "webhook-id": id }),
      /does not match/,
    ],
    [
      "a timestamp 301 s old",
      (id: string, body: string) => webhookHeaders(KEY, id, body, new Date(Date.now() - 301_000)),
      /s old; at most 300 s/,
    ],
    [
      "a timestamp 301 s in the future",
      (id: string, body: string) => webhookHeaders(KEY, id, body, new Date(Date.now() + 301_000)),
      /in the future; at most 300 s/,
    ],
    [
      "a signature without webhook-id",
      (id: string, body: string) => {
        const { "webhook-id": _, ...rest } = webhookHeaders(KEY, id, body);
        return rest;
      },
      /needs webhook-id, webhook-timestamp and webhook-signature/,
    ],
    [
      "a timestamp that is not a number",
      (id: string, body: string) => {
        const ts = "soon";
        return {
          "webhook-id": id,
          "webhook-timestamp": ts,
          "webhook-signature": signWebhook(KEY, id, 0, body),
        };
      },
      /whole seconds/,
    ],
  ])("refuses %s with 401 invalid_signature and records nothing", async (_what, sign, message) => {
    const leadId = uniqueLead();
    const id = idempotencyKey({ tenant: "acme", leadId, step: 1 });
    const body = payload(leadId);
    const before = await receipts();
    const res = await post(body, sign(id, body) as Record<string, string>);
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({
      ok: false,
      error: { code: "invalid_signature", message: expect.stringMatching(message) },
    });
    expect(await receipts()).toBe(before);
  });

  it("accepts a timestamp 4 minutes off either way (within the 5-minute tolerance)", async () => {
    for (const offset of [-240_000, 240_000]) {
      const leadId = uniqueLead();
      const id = idempotencyKey({ tenant: "acme", leadId, step: 1 });
      const body = payload(leadId);
      const res = await post(body, webhookHeaders(KEY, id, body, new Date(Date.now() + offset)));
      expect(res.statusCode).toBe(200);
    }
  });

  it("refuses a call with neither a signature nor a valid key as 401 unauthorized", async () => {
    const body = payload(uniqueLead());
    const before = await receipts();
    expect((await post(body, {})).json()).toMatchObject({ error: { code: "unauthorized" } });
    expect((await post(body, { "x-api-key": "nope" })).statusCode).toBe(401);
    expect(await receipts()).toBe(before);
  });

  it("refuses an unauthenticated call before looking at its body (401, not a validation error)", async () => {
    for (const body of [JSON.stringify({ lead_id: "not a token" }), "", "[]"]) {
      const res = await post(body, { "x-api-key": "nope" });
      expect({ status: res.statusCode, code: res.json().error.code }, body).toEqual({
        status: 401,
        code: "unauthorized",
      });
    }
  });

  it("needs the tenant in a signed payload and a valid payload", async () => {
    const leadId = uniqueLead();
    const noTenant = JSON.stringify({
      lead_id: leadId,
      strategy: "60s",
      message: "m",
      ts: new Date().toISOString(),
    });
    const a = await post(noTenant, webhookHeaders(KEY, `acme:${leadId}:1`, noTenant));
    expect(a.statusCode).toBe(400);
    expect(a.json().error.details).toEqual([{ path: "tenant", message: "is required for a signed call" }]);
    const broken = JSON.stringify({ strategy: 5, tenant: "acme" });
    const b = await post(broken, webhookHeaders(KEY, "x:y:1", broken));
    expect(b.statusCode).toBe(400);
    expect(b.json().error.details.map((d: { path: string }) => d.path)).toEqual(
      expect.arrayContaining(["lead_id", "strategy", "message", "ts"]),
    );
  });
});

describe("POST /ops/followup-hook with an API key (as the system it replaces)", () => {
  it("takes the tenant from the key and derives the id from tenant, lead and strategy", async () => {
    const leadId = uniqueLead();
    // The old payload: no tenant, no step.
    const body = JSON.stringify({
      lead_id: leadId,
      strategy: "7200s",
      message: "Auto follow-up at +7200s",
      ts: "x",
    });
    const before = await receipts();
    const a = await post(body, { "x-api-key": GLOBEX_KEY });
    const b = await post(body, { "x-api-key": GLOBEX_KEY });
    expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
    expect(a.json()).toEqual(ACK);
    expect((await receipts()) - before).toBe(1);
    const kv = await new Kvm(intake.nc!).open("hook_receipts");
    const receipt = HookReceipt.parse(
      (await kv.get(receiptKey("globex", leadId, `globex:${leadId}:7200s`)))?.json(),
    );
    expect(receipt).toMatchObject({
      tenant: "globex",
      auth: "api_key",
      webhook_id: `globex:${leadId}:7200s`,
    });
  });

  it("uses a given webhook-id, and a valid key is enough beside an expired signature", async () => {
    const leadId = uniqueLead();
    const id = idempotencyKey({ tenant: "acme", leadId, step: 1 });
    const body = payload(leadId);
    const stale = webhookHeaders(KEY, id, body, new Date(Date.now() - 3_600_000));
    const res = await post(body, { ...stale, "x-api-key": ACME_KEY });
    expect(res.statusCode).toBe(200);
    const kv = await new Kvm(intake.nc!).open("hook_receipts");
    expect(HookReceipt.parse((await kv.get(receiptKey("acme", leadId, id)))?.json()).auth).toBe("api_key");
  });

  it("refuses a payload naming another tenant than the key's", async () => {
    const body = payload(uniqueLead(), { tenant: "globex" });
    const res = await post(body, { "x-api-key": ACME_KEY });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details).toEqual([{ path: "tenant", message: "must be the API key's tenant" }]);
  });
});
