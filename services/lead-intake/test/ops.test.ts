import { encodeEvent, makeEvent, QueueStatus, subjects } from "@followup/contracts";
import { type NatsServer, startNatsServer, waitFor } from "@followup/nats-harness";
import { webhookHeaders } from "@followup/service-kit";
import { dueData, publishDeadLetter } from "@followup/system-tests/support";
import { jetstream } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ACME_KEY,
  ALEX,
  GLOBEX_KEY,
  type Intake,
  jsonHeaders,
  KEY,
  startIntake,
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

async function publishDead(tenant: string, leadId: string, step: number): Promise<void> {
  await publishDeadLetter(intake.nc!, tenant, leadId, step);
}

describe("GET /ops/followup/queue reads JetStream state", () => {
  it("counts due follow-ups, timers and dead letters from the streams", async () => {
    const js = jetstream(intake.nc!);
    const ttl = natsHeaders();
    ttl.set("Nats-TTL", "3600");
    for (const step of [1, 2, 3]) {
      await js.publish(subjects.followupTimer("acme", "Q1", step), "{}", { headers: ttl });
    }
    for (const step of [1, 2]) {
      const due = makeEvent("followup.due.v1", {
        source: "/scheduler",
        subject: `Q1/${step}`,
        tenant: "acme",
        data: dueData("acme", "Q1", step),
      });
      await js.publish(subjects.followupDue("acme", "Q1", step), encodeEvent(due));
    }
    await publishDead("acme", "Q1", 3);

    const res = await intake.app.inject({ url: "/ops/followup/queue", headers: { "x-api-key": ACME_KEY } });
    expect(res.statusCode).toBe(200);
    // The body itself, no envelope, as the system it replaces answered.
    expect(QueueStatus.parse(res.json())).toEqual({
      enabled: true,
      queue: "followups",
      jobs: { queued: 2, scheduled: 3, dead: 1 },
    });
    expect(res.json()).not.toHaveProperty("ok");
  });

  it("needs an API key", async () => {
    const res = await intake.app.inject({ url: "/ops/followup/queue" });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe("unauthorized");
  });

  it("reports follow-ups disabled (FOLLOWUP_ENABLED=false) with the counts and a reason", async () => {
    const disabled = await startIntake({ server, env: { FOLLOWUP_ENABLED: "false" } });
    try {
      const body = (
        await disabled.app.inject({ url: "/ops/followup/queue", headers: { "x-api-key": ACME_KEY } })
      ).json();
      expect(body).toMatchObject({
        enabled: false,
        queue: "followups",
        reason: expect.stringContaining("FOLLOWUP_ENABLED"),
      });
      expect(body.jobs.scheduled).toBeGreaterThanOrEqual(3);
    } finally {
      await disabled.close();
    }
  });
});

describe("with NATS unreachable the HTTP server still answers", () => {
  let offline: Intake;
  beforeAll(async () => {
    offline = await startIntake();
  });
  afterAll(async () => {
    await offline?.close();
  });

  it("queue status enabled:false with the reason; /healthz 200; /readyz 503", async () => {
    const queue = await offline.app.inject({
      url: "/ops/followup/queue",
      headers: { "x-api-key": ACME_KEY },
    });
    expect(queue.statusCode).toBe(200);
    expect(QueueStatus.parse(queue.json())).toEqual({
      enabled: false,
      queue: "followups",
      jobs: { queued: 0, scheduled: 0, dead: 0 },
      reason: "NATS unreachable: connecting to NATS",
    });
    expect((await offline.app.inject("/healthz")).statusCode).toBe(200);
    const ready = await offline.app.inject("/readyz");
    expect(ready.statusCode).toBe(503);
    expect(ready.json().data.checks.nats).toEqual({ ok: false, detail: "connecting" });
  });

  it("leads, outcomes, lead views, hooks and dead letters answer 503 service_unavailable with Retry-After", async () => {
    const body = JSON.stringify({ lead_id: "L1", strategy: "60s", message: "m", ts: "t", tenant: "acme" });
    const calls = [
      offline.app.inject({ method: "POST", url: "/v1/lead", headers: jsonHeaders(), payload: ALEX }),
      offline.app.inject({ url: "/v1/lead/L1", headers: { "x-api-key": ACME_KEY } }),
      offline.app.inject({
        method: "POST",
        url: "/v1/lead/L1/outcome",
        headers: jsonHeaders(),
        payload: { outcome: "booked" },
      }),
      offline.app.inject({
        method: "POST",
        url: "/ops/followup-hook",
        headers: { "content-type": "application/json", ...webhookHeaders(KEY, "acme:L1:1", body) },
        payload: body,
      }),
      offline.app.inject({ url: "/ops/dead-letters", headers: { "x-api-key": ACME_KEY } }),
    ];
    for (const res of await Promise.all(calls)) {
      expect(res.statusCode).toBe(503);
      expect(res.headers["retry-after"]).toBe("5");
      expect(res.json()).toMatchObject({ ok: false, error: { code: "service_unavailable" } });
      expect(res.json().error.message).toContain("connecting to NATS");
    }
  });

  it("still validates first: bad input is a 400, not a 503", async () => {
    const res = await offline.app.inject({
      method: "POST",
      url: "/v1/lead",
      headers: jsonHeaders(),
      payload: {},
    });
    expect(res.statusCode).toBe(400);
  });
});

describe("when the nats-server goes away and comes back", () => {
  it("answers degraded at once while it is down and recovers after", async () => {
    const own = await startNatsServer();
    const app = await startIntake({ server: own });
    try {
      expect(
        (await app.app.inject({ method: "POST", url: "/v1/lead", headers: jsonHeaders(), payload: ALEX }))
          .statusCode,
      ).toBe(200);
      await own.stop();
      await waitFor(() => !app.broker.available, { description: "the broker to notice the disconnect" });
      const started = Date.now();
      const res = await app.app.inject({
        method: "POST",
        url: "/v1/lead",
        headers: jsonHeaders(),
        payload: ALEX,
      });
      expect(res.statusCode).toBe(503);
      // No waiting for a publish timeout (5 s): the broker knows it is disconnected.
      expect(Date.now() - started).toBeLessThan(1000);
      const queue = (
        await app.app.inject({ url: "/ops/followup/queue", headers: { "x-api-key": ACME_KEY } })
      ).json();
      expect(queue).toMatchObject({ enabled: false, reason: expect.stringContaining("disconnected") });
      await own.start();
      await waitFor(() => app.broker.available, {
        description: "the broker to reconnect",
        timeoutMs: 15_000,
      });
      const again = await app.app.inject({
        method: "POST",
        url: "/v1/lead",
        headers: jsonHeaders(),
        payload: ALEX,
      });
      expect(again.statusCode).toBe(200);
    } finally {
      await app.close();
      await own.cleanup();
    }
  });
});

describe("rate limits per API key", () => {
  it("answers 429 rate_limited with Retry-After in the error envelope, per key", async () => {
    const limited = await startIntake({ env: { RATE_LIMIT_PER_MINUTE: "3" } });
    try {
      const call = (key: string) =>
        limited.app.inject({
          url: "/ops/followup/queue",
          headers: { "x-api-key": key, "x-request-id": "rl-1" },
        });
      for (let i = 0; i < 3; i++) expect((await call(ACME_KEY)).statusCode).toBe(200);
      const refused = await call(ACME_KEY);
      expect(refused.statusCode).toBe(429);
      const retryAfter = Number(refused.headers["retry-after"]);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(refused.json()).toEqual({
        ok: false,
        error: { code: "rate_limited", message: expect.stringContaining("3 requests per minute") },
        request_id: "rl-1",
      });
      // Another key has its own budget; health routes have none.
      expect((await call(GLOBEX_KEY)).statusCode).toBe(200);
      for (let i = 0; i < 5; i++) expect((await limited.app.inject("/healthz")).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe("x-request-id", () => {
  it("echoes a sane one on success, errors, unknown routes and health; replaces an insane one", async () => {
    const sane = "req-42_a.b:c";
    const responses = await Promise.all([
      intake.app.inject({
        url: "/ops/followup/queue",
        headers: { "x-api-key": ACME_KEY, "x-request-id": sane },
      }),
      intake.app.inject({ url: "/ops/followup/queue", headers: { "x-request-id": sane } }),
      intake.app.inject({ url: "/nowhere", headers: { "x-request-id": sane } }),
      intake.app.inject({ url: "/healthz", headers: { "x-request-id": sane } }),
    ]);
    for (const res of responses) expect(res.headers["x-request-id"]).toBe(sane);
    expect(responses[1]!.json().request_id).toBe(sane);
    expect(responses[2]!.json()).toMatchObject({ ok: false, error: { code: "not_found" }, request_id: sane });

    for (const insane of ["has spaces", "x".repeat(129), "<script>", ""]) {
      const res = await intake.app.inject({ url: "/nowhere", headers: { "x-request-id": insane } });
      const id = res.headers["x-request-id"] as string;
      expect(id).not.toBe(insane);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.json().request_id).toBe(id);
    }
    const generated = await intake.app.inject({ url: "/healthz" });
    expect(generated.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("logs", () => {
  it("log a lead with its phone and e-mail masked, and never the API key", async () => {
    const email = "alex.rivera@example.com";
    const res = await intake.app.inject({
      method: "POST",
      url: "/v1/lead",
      headers: { ...jsonHeaders(), "x-request-id": "log-check-1" },
      payload: { ...ALEX, email },
    });
    expect(res.statusCode).toBe(200);
    const lines = intake.logs.filter((line) => line.includes("log-check-1"));
    const accepted = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "lead_accepted");
    expect(accepted).toMatchObject({
      phone: "***0199",
      email: "a***@example.com",
      tenant: "acme",
      level: "info",
    });
    expect(lines.map((l) => JSON.parse(l).msg)).toContain("request_completed");
    const all = intake.logs.join("\n");
    for (const secret of [ALEX.phone, "5550199", "555-0199", email, ALEX.name, ACME_KEY, GLOBEX_KEY]) {
      expect(all).not.toContain(secret);
    }
  });

  it("label request metrics with the route pattern, never the raw URL", async () => {
    await intake.app.inject({ url: "/v1/lead/some-lead-id-123", headers: { "x-api-key": ACME_KEY } });
    const text = (await intake.app.inject("/metrics")).body;
    expect(text).toContain('route="/v1/lead/:id"');
    expect(text).not.toContain("some-lead-id-123");
  });
});

describe("dead letters of the caller's tenant", () => {
  it("lists them by lead, step and limit, never another tenant's", async () => {
    await publishDead("acme", "D1", 1);
    await publishDead("acme", "D1", 2);
    await publishDead("acme", "D2", 1);
    await publishDead("globex", "D1", 1);
    const list = async (query: string, key = ACME_KEY) =>
      intake.app.inject({ url: `/ops/dead-letters${query}`, headers: { "x-api-key": key } });

    const byLead = (await list("?lead_id=D1")).json();
    expect(byLead.ok).toBe(true);
    expect(byLead.data.count).toBe(2);
    expect(byLead.data.dead_letters.map((d: { subject: string }) => d.subject)).toEqual([
      "followup.dead.acme.D1.1",
      "followup.dead.acme.D1.2",
    ]);
    expect(byLead.data.dead_letters[0].event.data).toMatchObject({ reason: "exhausted", attempts: 8 });
    expect((await list("?lead_id=D1&step=2")).json().data.count).toBe(1);
    expect((await list("?limit=1")).json().data.count).toBe(1);
    const globex = (await list("", GLOBEX_KEY)).json().data;
    expect(globex.dead_letters.map((d: { subject: string }) => d.subject)).toEqual([
      "followup.dead.globex.D1.1",
    ]);

    for (const bad of ["?limit=0", "?limit=abc", "?limit=100000", "?lead_id=a.b", "?step=0"]) {
      const res = await list(bad);
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().error.code).toBe("validation_error");
    }
  });

  it("replays a lead's step, then the rest of the tenant, onto the work queue", async () => {
    const jsm = intake.jsm!;
    await publishDead("acme", "R1", 1);
    await publishDead("acme", "R1", 2);
    await publishDead("globex", "R1", 1);
    const queuedBefore = await streamMessages(jsm, "FOLLOWUPS");
    const one = await intake.app.inject({
      method: "POST",
      url: "/ops/dead-letters/replay",
      headers: jsonHeaders(),
      payload: { lead_id: "R1", step: 1 },
    });
    expect(one.statusCode).toBe(200);
    expect(one.json().data).toMatchObject({
      replayed: 1,
      items: [{ lead_id: "R1", step: 1, idempotency_key: "acme:R1:1" }],
    });
    expect((await streamMessages(jsm, "FOLLOWUPS")) - queuedBefore).toBe(1);

    // No body at all: every remaining dead letter of acme, none of globex's.
    const rest = await intake.app.inject({
      method: "POST",
      url: "/ops/dead-letters/replay",
      headers: { "x-api-key": ACME_KEY },
    });
    expect(rest.statusCode).toBe(200);
    expect(rest.json().data.replayed).toBeGreaterThanOrEqual(1);
    const acmeLeft = (
      await intake.app.inject({ url: "/ops/dead-letters", headers: { "x-api-key": ACME_KEY } })
    ).json();
    expect(acmeLeft.data.count).toBe(0);
    const globexLeft = (
      await intake.app.inject({ url: "/ops/dead-letters?lead_id=R1", headers: { "x-api-key": GLOBEX_KEY } })
    ).json();
    expect(globexLeft.data.count).toBe(1);

    const bad = await intake.app.inject({
      method: "POST",
      url: "/ops/dead-letters/replay",
      headers: jsonHeaders(),
      payload: { step: "one" },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details[0].path).toBe("step");
  });
});
