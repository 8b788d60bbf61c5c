// The support the cross-service tests stand on: the recording hook verifies signatures, drops
// duplicates but counts them, answers as told; /metrics text becomes numbers. No broker needed.

import { parseWebhookSecret, webhookHeaders } from "@followup/service-kit";
import { afterEach, describe, expect, it } from "vitest";
import { newHookSecret } from "./fixtures.js";
import { type HookRecorder, startHookRecorder } from "./hook-recorder.js";
import { parsePrometheusText } from "./metrics.js";

const SECRET = newHookSecret();
const KEY = parseWebhookSecret(SECRET);
const PAYLOAD = {
  lead_id: "L1",
  strategy: "2s",
  message: "Auto follow-up at +2s",
  ts: new Date().toISOString(),
};

let hook: HookRecorder | undefined;
afterEach(async () => hook?.close());

async function post(url: string, id: string, options: { key?: Buffer; body?: object } = {}) {
  const body = JSON.stringify(options.body ?? { ...PAYLOAD, tenant: "acme", step: 1 });
  const signed = webhookHeaders(options.key ?? KEY, id, body);
  return fetch(url, { method: "POST", headers: { "content-type": "application/json", ...signed }, body });
}

describe("the recording hook", () => {
  it("accepts a signed call once per webhook-id, counts the duplicate, refuses a bad signature", async () => {
    hook = await startHookRecorder({ secret: SECRET });
    expect((await post(hook.url, "acme:L1:1")).status).toBe(200);
    expect((await post(hook.url, "acme:L1:1")).status).toBe(200);
    const wrongKey = parseWebhookSecret(newHookSecret());
    expect((await post(hook.url, "acme:L1:2", { key: wrongKey })).status).toBe(401);

    expect(hook.calls).toHaveLength(3);
    expect([...hook.delivered.keys()]).toEqual(["acme:L1:1"]);
    expect(hook.duplicates).toBe(1);
    expect(hook.unverified).toBe(1);
    expect(hook.calls[2]?.verifyFailure).toBe("bad_signature");
    expect(hook.deliveredFor("L1").map((c) => c.body?.step)).toEqual([1]);
    expect(hook.calls[0]?.payloadValid).toBe(true);
  });

  it("answers a status, a delay or a refused connection when told", async () => {
    hook = await startHookRecorder({ secret: SECRET });
    hook.respond({ status: 503, headers: { "retry-after": "1" } });
    const refused = await post(hook.url, "acme:L2:1");
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(hook.delivered.size).toBe(0);

    hook.respond({ delayMs: 300 });
    const started = Date.now();
    expect((await post(hook.url, "acme:L2:1")).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);

    hook.respond((_call, index) => (index === 2 ? { refuse: true } : undefined));
    await expect(post(hook.url, "acme:L3:1")).rejects.toThrow();
    expect(hook.calls.map((c) => c.status)).toEqual([503, 200, 0]);
  });
});

describe("metrics text", () => {
  it("becomes samples that can be summed over a label subset", () => {
    const snapshot = parsePrometheusText(
      [
        "# HELP followup_jobs_total Delivery attempts",
        "# TYPE followup_jobs_total counter",
        'followup_jobs_total{strategy="2s",result="ok",service="dispatcher"} 3',
        'followup_jobs_total{strategy="4s",result="ok",service="dispatcher"} 2',
        'followup_jobs_total{strategy="4s",result="error",service="dispatcher"} 1',
        'weird_label{path="a \\"quoted\\" \\\\ value"} 1.5e3',
        "up 1",
      ].join("\n"),
    );
    expect(snapshot.value("followup_jobs_total", { result: "ok" })).toBe(5);
    expect(snapshot.value("followup_jobs_total")).toBe(6);
    expect(snapshot.value("followup_jobs_total", { result: "dead" })).toBe(0);
    expect(snapshot.has("followup_jobs_total", { result: "dead" })).toBe(false);
    expect(snapshot.matching("weird_label")[0]?.labels.path).toBe('a "quoted" \\ value');
    expect(snapshot.value("weird_label")).toBe(1500);
    expect(snapshot.value("up")).toBe(1);
  });
});
