import { idempotencyKey } from "@followup/contracts";
import { freePort } from "@followup/nats-harness";
import { verifyWebhook } from "@followup/service-kit";
import { type HookRecorder, startHookRecorder } from "@followup/system-tests/support";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelFollowup } from "../src/channels/channel.js";
import { HookChannel, USER_AGENT } from "../src/channels/hook.js";
import { dueEvent, KEY, SECRET } from "./fixtures.js";

let receiver: HookRecorder;
let hook: HookChannel;

beforeAll(async () => {
  receiver = await startHookRecorder({ secret: SECRET });
  hook = new HookChannel({ url: receiver.url, secret: KEY, timeoutMs: 600, concurrency: 4 });
});

afterAll(async () => {
  await hook?.close();
  await receiver?.close();
});

function followup(leadId: string, attempt = 1): ChannelFollowup {
  const event = dueEvent({ tenant: "acme", leadId, step: 2, delayS: 1800 });
  return { tenant: "acme", due: event.data, attempt, idempotencyKey: event.data.idempotency_key };
}

describe("the HTTP hook channel (real HTTP server on 127.0.0.1)", () => {
  it("posts the replaced system's payload plus tenant, step, due_at and attempt, signed", async () => {
    receiver.respond(() => ({ status: 200 }));
    const f = followup("L-payload", 3);
    const before = Date.now();
    const result = await hook.send(f);
    expect(result).toEqual({ classification: { kind: "delivered" }, statusCode: 200 });

    const [call] = receiver.callsFor(idempotencyKey({ tenant: "acme", leadId: "L-payload", step: 2 }));
    expect(call).toBeDefined();
    expect(call!.verified).toBe(true);
    expect(verifyWebhook(KEY, call!.headers as never, call!.raw).ok).toBe(true);
    expect(call!.headers["content-type"]).toBe("application/json");
    expect(call!.headers["user-agent"]).toBe(USER_AGENT);
    expect(call!.headers["webhook-id"]).toBe("acme:L-payload:2");
    expect(call!.headers["x-api-key"]).toBeUndefined();
    expect(Object.keys(call!.body!).sort()).toEqual(
      ["attempt", "due_at", "lead_id", "message", "step", "strategy", "tenant", "ts"].sort(),
    );
    expect(call!.body).toMatchObject({
      lead_id: "L-payload",
      strategy: "1800s",
      message: "Auto follow-up at +1800s",
      tenant: "acme",
      step: 2,
      due_at: f.due.due_at,
      attempt: 3,
    });
    const ts = Date.parse(String(call!.body?.ts));
    expect(ts).toBeGreaterThanOrEqual(before - 5);
    expect(ts).toBeLessThanOrEqual(Date.now());
    // A signature made with another secret does not verify.
    const other = Buffer.alloc(32, 9);
    expect(verifyWebhook(other, call!.headers as never, call!.raw).ok).toBe(false);
    expect(call!.raw).not.toContain(SECRET);
  });

  it("keeps connections alive between calls", async () => {
    receiver.respond(() => ({ status: 200 }));
    const leads = Array.from({ length: 6 }, (_, i) => `L-keepalive-${i}`);
    for (const lead of leads) await hook.send(followup(lead));
    const ports = new Set(leads.map((lead) => receiver.callsFor(`acme:${lead}:2`)[0]!.remotePort));
    // Six sequential calls over at most two sockets: the pool reuses its connections.
    expect(ports.size).toBeLessThanOrEqual(2);
  });

  it("classifies refusals and failures, keeping the receiver's words and Retry-After", async () => {
    receiver.respond((call) => {
      const lead = String(call.body?.lead_id);
      if (lead === "L-500") return { status: 500, body: '{"error":"database\\n down"}' };
      if (lead === "L-429") return { status: 429, headers: { "retry-after": "2" } };
      if (lead === "L-408") return { status: 408 };
      if (lead === "L-400") return { status: 400, body: `bad ${"x".repeat(500)}` };
      return { status: 200 };
    });
    const r500 = await hook.send(followup("L-500"));
    expect(r500).toEqual({
      classification: { kind: "retry", reason: "status_5xx" },
      statusCode: 500,
      error: 'HTTP 500: {"error":"database\\n down"}',
    });
    const r429 = await hook.send(followup("L-429"));
    expect(r429).toMatchObject({ classification: { kind: "retry", reason: "status_429" }, statusCode: 429 });
    expect(r429.retryAfterMs).toBe(2_000);
    expect((await hook.send(followup("L-408"))).classification).toEqual({
      kind: "retry",
      reason: "status_408",
    });
    const r400 = await hook.send(followup("L-400"));
    expect(r400.classification).toEqual({ kind: "permanent" });
    expect(r400.error!.length).toBeLessThanOrEqual("HTTP 400: ".length + 200);
  });

  it("times out a receiver that does not answer, within its timeout", async () => {
    receiver.respond(() => ({ status: 0, hang: true }));
    const started = performance.now();
    const result = await hook.send(followup("L-hang"));
    const elapsed = performance.now() - started;
    expect(result.classification).toEqual({ kind: "retry", reason: "timeout" });
    expect(result.statusCode).toBeNull();
    expect(result.error).toBe("timeout: no response within 600 ms");
    expect(elapsed).toBeGreaterThanOrEqual(590);
    expect(elapsed).toBeLessThan(1_500);
  });

  it("reports a refused connection as a connection error", async () => {
    const port = await freePort();
    const nowhere = new HookChannel({
      url: `http://127.0.0.1:${port}/ops/followup-hook`,
      secret: KEY,
      timeoutMs: 1_000,
      concurrency: 1,
    });
    try {
      const result = await nowhere.send(followup("L-refused"));
      expect(result.classification).toEqual({ kind: "retry", reason: "connection" });
      expect(result.statusCode).toBeNull();
      expect(result.error).toMatch(/ECONNREFUSED/);
    } finally {
      await nowhere.close();
    }
  });
});
