import {
  encodeEvent,
  type FollowupPlan,
  leadKey,
  makeEvent,
  OpsSummary,
  subjects,
  UpcomingFollowups,
} from "@followup/contracts";
import type { NatsServer } from "@followup/nats-harness";
import { publishDeadLetter } from "@followup/system-tests/support";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ACME_KEY,
  GLOBEX_KEY,
  type Intake,
  startIntakeWithServer,
  stopIntakeWithServer,
} from "./fixtures.js";

/** The console's reads: who a key is, the next follow-ups to fire, the tenant at a glance. */

let server: NatsServer;
let intake: Intake;
const inMinutes = (m: number) => new Date(Date.now() + m * 60_000).toISOString();

async function publishTimer(tenant: string, leadId: string, step: number, dueAt: string): Promise<void> {
  const headers = natsHeaders();
  headers.set("Nats-TTL", "3600");
  const timer = makeEvent("followup.timer.v1", {
    source: "/scheduler",
    subject: `${leadId}/${step}`,
    tenant,
    data: { lead_id: leadId, step, delay_s: 60 * step, due_at: dueAt, ttl_s: 3600 },
  });
  await jetstream(intake.nc!).publish(subjects.followupTimer(tenant, leadId, step), encodeEvent(timer), {
    headers,
  });
}

async function publishResult(
  tenant: string,
  leadId: string,
  result: "ok" | "error" | "dead",
  error?: string,
) {
  const event = makeEvent("followup.result.v1", {
    source: "/dispatcher",
    subject: `${leadId}/1`,
    tenant,
    data: {
      lead_id: leadId,
      step: 1,
      delay_s: 60,
      due_at: new Date().toISOString(),
      idempotency_key: `${tenant}:${leadId}:1`,
      channel: "hook",
      attempt: 1,
      result,
      status_code: result === "ok" ? 200 : 503,
      duration_ms: 3,
      ...(error ? { error } : {}),
    },
  });
  await jetstream(intake.nc!).publish(subjects.followupResult(tenant, leadId, 1), encodeEvent(event));
}

beforeAll(async () => {
  ({ server, intake } = await startIntakeWithServer());
  const plans = await new Kvm(intake.nc!).open("followup_plans");
  const plan: FollowupPlan = {
    lead_id: "UP-1",
    tenant: "acme",
    lead_created_at: new Date().toISOString(),
    pred_prob: 0.9,
    planned_at: new Date().toISOString(),
    steps: [
      { step: 1, delay_s: 60, due_at: inMinutes(30), state: "pending", channel: "sms" },
      { step: 2, delay_s: 120, due_at: inMinutes(90), state: "pending", channel: "email" },
    ],
    sequence: { name: "welcome", revision: 1 },
  };
  await plans.put(leadKey({ tenant: "acme", leadId: "UP-1" }), JSON.stringify(plan));
  await publishTimer("acme", "UP-1", 2, inMinutes(90));
  await publishTimer("acme", "UP-1", 1, inMinutes(30));
  await publishTimer("acme", "UP-2", 1, inMinutes(10));
  await publishTimer("globex", "UP-G", 1, inMinutes(5));
  await publishResult("acme", "UP-3", "ok");
  await publishResult("acme", "UP-3", "error");
  await publishResult("acme", "UP-4", "dead");
  await publishResult("acme", "UP-5", "error", "suppressed");
  await publishResult("globex", "UP-G", "ok");
  await publishDeadLetter(intake.nc!, "acme", "UP-4", 1);
});

afterAll(() => stopIntakeWithServer(intake, server));

const get = (url: string, key = ACME_KEY) => intake.app.inject({ url, headers: { "x-api-key": key } });

describe("GET /v1/caller", () => {
  it("names the key's tenant, and refuses an unknown key", async () => {
    expect((await get("/v1/caller")).json()).toEqual({ ok: true, data: { tenant: "acme" } });
    expect((await get("/v1/caller", GLOBEX_KEY)).json().data.tenant).toBe("globex");
    expect((await get("/v1/caller", "nope")).statusCode).toBe(401);
  });
});

describe("GET /ops/followups/upcoming", () => {
  it("lists the tenant's waiting timers soonest first, with the plan's sequence and channel", async () => {
    const res = await get("/ops/followups/upcoming");
    expect(res.statusCode).toBe(200);
    const data = UpcomingFollowups.parse(res.json().data);
    expect(data.pending).toBe(3);
    expect(data.followups.map((f) => [f.lead_id, f.step, f.sequence, f.channel])).toEqual([
      ["UP-2", 1, null, null],
      ["UP-1", 1, "welcome", "sms"],
      ["UP-1", 2, "welcome", "email"],
    ]);
  });

  it("filters by lead, channel and sequence, and limits", async () => {
    const of = async (query: string) =>
      UpcomingFollowups.parse((await get(`/ops/followups/upcoming?${query}`)).json().data).followups.map(
        (f) => `${f.lead_id}/${f.step}`,
      );
    expect(await of("channel=email")).toEqual(["UP-1/2"]);
    expect(await of("sequence=welcome&limit=1")).toEqual(["UP-1/1"]);
    expect(await of("lead_id=UP-2")).toEqual(["UP-2/1"]);
  });

  it("never shows another tenant's follow-ups, and names a bad limit", async () => {
    const globex = UpcomingFollowups.parse((await get("/ops/followups/upcoming", GLOBEX_KEY)).json().data);
    expect(globex.followups.map((f) => f.lead_id)).toEqual(["UP-G"]);
    const bad = await get("/ops/followups/upcoming?limit=501");
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details[0].path).toBe("limit");
  });

  it("leaves out a step whose timer fired (its marker)", async () => {
    const headers = natsHeaders();
    headers.set("Nats-Marker-Reason", "MaxAge");
    await jetstream(intake.nc!).publish(subjects.followupTimer("acme", "UP-2", 1), "", { headers });
    const data = UpcomingFollowups.parse((await get("/ops/followups/upcoming")).json().data);
    expect(data.followups.map((f) => `${f.lead_id}/${f.step}`)).toEqual(["UP-1/1", "UP-1/2"]);
    await publishTimer("acme", "UP-2", 1, inMinutes(10));
  });
});

describe("GET /ops/summary", () => {
  it("counts the tenant's waiting, due within the hour, dead letters and results by channel", async () => {
    const res = await get("/ops/summary");
    expect(res.statusCode).toBe(200);
    const data = OpsSummary.parse(res.json().data);
    expect(data).toMatchObject({ tenant: "acme", pending: 3, due_next_hour: 2, dead_letters: 1 });
    expect(data.results.by_channel).toEqual({ hook: { delivered: 1, retried: 1, failed: 1, suppressed: 1 } });
    expect(data.results.complete).toBe(true);
    const globex = OpsSummary.parse((await get("/ops/summary", GLOBEX_KEY)).json().data);
    expect(globex).toMatchObject({ tenant: "globex", pending: 1, dead_letters: 0 });
    expect(globex.results.by_channel).toEqual({
      hook: { delivered: 1, retried: 0, failed: 0, suppressed: 0 },
    });
  });
});
