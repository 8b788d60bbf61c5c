// Sequences at the scheduler, in this process against a real nats-server (one per test): which
// sequence a scored lead is enrolled in, the built-in one of a tenant without sequences, send
// windows and SMS quiet hours moving steps (plan and timer alike), stop_on, enrolments and
// unenrolments by hand, and a sequence written just before a lead applying to it in two copies.

import { randomUUID } from "node:crypto";
import {
  encodeEvent,
  type FollowupPlan,
  type LeadScored,
  makeEvent,
  type Outcome,
  planExperiment,
  Sequence,
  type SequenceRecord,
  sequenceKey,
  subjects,
} from "@followup/contracts";
import { waitFor } from "@followup/nats-harness";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { SequenceCache } from "../src/sequences.js";
import {
  brokerPerTest,
  readPlan,
  timerMessage,
  timersOfLead,
  timersStored,
  topo,
} from "./fixtures/broker.js";
import { type LeadFixture, lead, putLead, scoredEvent, storedLead, submitLead } from "./fixtures/leads.js";
import { capturedLogger, metricValue, runScheduler } from "./fixtures/scheduler.js";

const broker = brokerPerTest({ provision: true });

async function scheduler(rule = {}) {
  const s = await runScheduler(broker.server.url, rule);
  broker.cleanups.push(s.stop);
  return s;
}

/** Stores a sequence as lead-intake's PUT does; resolves with its revision. */
async function putSequence(tenant: string, name: string, input: z.input<typeof Sequence>): Promise<number> {
  const kv = await new Kvm(broker.nc).open(topo.buckets.sequences.bucket);
  const record: SequenceRecord = {
    ...Sequence.parse(input),
    tenant,
    name,
    updated_at: new Date().toISOString(),
  };
  return kv.put(sequenceKey(tenant, name), JSON.stringify(record));
}

/** Publishes the lead's lead.scored with `data` changed (segment, zones), after storing the lead. */
async function submit(fixture: LeadFixture, data: Partial<LeadScored["data"]> = {}) {
  const event = scoredEvent(fixture);
  return submitLead(broker.nc, fixture, { event: { ...event, data: { ...event.data, ...data } } });
}

async function planOf(fixture: LeadFixture) {
  return waitFor(() => readPlan(broker.nc, fixture), { description: `the plan of ${fixture.leadId}` });
}

async function publishOutcome(fixture: LeadFixture, outcome: Outcome, stops: boolean) {
  const recordedAt = new Date().toISOString();
  await putLead(broker.nc, storedLead(fixture, { outcome: { outcome, recorded_at: recordedAt } }));
  const event = makeEvent("lead.outcome.v1", {
    source: "/lead-intake",
    subject: fixture.leadId,
    tenant: fixture.tenant,
    data: { lead_id: fixture.leadId, outcome, recorded_at: recordedAt, stops_followups: stops },
  });
  await jetstream(broker.nc).publish(
    subjects.leadOutcome(fixture.tenant, fixture.leadId),
    encodeEvent(event),
  );
}

/** Publishes lead.enrolled as lead-intake's POST /v1/lead/:id/enroll does (a fresh id: no dedup). */
async function enrol(fixture: LeadFixture, sequence: string, requestedAt = new Date(), zones = {}) {
  const event = makeEvent("lead.enrolled.v1", {
    source: "/lead-intake",
    subject: fixture.leadId,
    tenant: fixture.tenant,
    data: {
      lead_id: fixture.leadId,
      sequence,
      requested_at: requestedAt.toISOString(),
      lead_created_at: fixture.createdAt.toISOString(),
      pred_prob: fixture.predProb,
      ...zones,
    },
  });
  await jetstream(broker.nc).publish(
    subjects.leadEnrolled(fixture.tenant, fixture.leadId),
    encodeEvent(event),
    {
      msgID: randomUUID(),
    },
  );
}

async function unenrol(fixture: LeadFixture) {
  const event = makeEvent("lead.unenrolled.v1", {
    source: "/lead-intake",
    subject: fixture.leadId,
    tenant: fixture.tenant,
    data: { lead_id: fixture.leadId, requested_at: new Date().toISOString() },
  });
  await jetstream(broker.nc).publish(
    subjects.leadUnenrolled(fixture.tenant, fixture.leadId),
    encodeEvent(event),
  );
}

const HOUR_STEP = { delay: "1h", channel: "hook" } as const;

describe("enrolment at scoring", () => {
  it("enrols by priority among the sequences whose segment matches, recording name, revision, channels and stop_on", async () => {
    await putSequence("acme", "hot", {
      priority: 10,
      match: { intents: ["lead_capture"], urgency: ["high"] },
      steps: [
        { delay: "1h", channel: "hook" },
        { delay: "2h", channel: "email", template: "recap" },
      ],
      stop_on: ["booked"],
    });
    const coldRevision = await putSequence("acme", "cold", {
      priority: 5,
      steps: [{ delay: "3h", channel: "hook" }],
    });
    const neutralRevision = await putSequence("acme", "neutral", {
      priority: 20,
      match: { sentiment: ["neutral"] },
      steps: [HOUR_STEP],
    });
    const off = await putSequence("acme", "off", { enabled: false, priority: 99, steps: [HOUR_STEP] });
    expect(off).toBeGreaterThan(0);
    await scheduler();

    const hot = lead();
    const support = lead();
    const neutral = lead();
    await submit(hot);
    await submit(support, { intent: "support" });
    await submit(neutral, { sentiment: "neutral", intent: "support" });

    const hotPlan = await timersStored(broker.nc, broker.jsm, hot, 1);
    expect(hotPlan.sequence).toEqual({ name: "hot", revision: 1 });
    expect(hotPlan.stop_on).toEqual(["booked"]);
    expect(
      hotPlan.steps.map((st) => [
        st.step,
        st.channel,
        st.template,
        Date.parse(st.due_at) - hot.createdAt.getTime(),
      ]),
    ).toEqual([
      [1, "hook", undefined, 3_600_000],
      [2, "email", "recap", 7_200_000],
    ]);
    expect((await timersStored(broker.nc, broker.jsm, support, 1)).sequence).toEqual({
      name: "cold",
      revision: coldRevision,
    });
    expect((await timersStored(broker.nc, broker.jsm, neutral, 1)).sequence).toEqual({
      name: "neutral",
      revision: neutralRevision,
    });
  });

  it("skips a lead no sequence of its tenant matches as no_matching_sequence: debug log, counted, no timer", async () => {
    await putSequence("acme", "only-high", { match: { min_pred_prob: 0.95 }, steps: [HOUR_STEP] });
    const s = await scheduler();
    const fixture = lead({ predProb: 0.9 });
    await submit(fixture);
    const plan = await planOf(fixture);
    expect(plan.skipped).toBe("no_matching_sequence");
    expect(plan.steps).toEqual([]);
    await waitFor(
      async () =>
        (await metricValue(s.registry, "followups_skipped_total", { reason: "no_matching_sequence" })) === 1,
      {
        description: "the skip to be counted",
      },
    );
    expect(s.logsNamed("followups_skipped")).toEqual([
      expect.objectContaining({ level: "debug", lead_id: fixture.leadId, reason: "no_matching_sequence" }),
    ]);
    expect(await timersOfLead(broker.jsm, fixture)).toBe(0);
  });

  it("gives a tenant without sequences the built-in default: today's plan, no sequence, channel or stop_on recorded", async () => {
    await putSequence("globex", "any", { steps: [HOUR_STEP] });
    await scheduler({ delays: [3600, 7200] });
    const fixture = lead({ tenant: "acme" });
    await submit(fixture);
    const plan = await timersStored(broker.nc, broker.jsm, fixture, 1);
    expect(plan.sequence).toBeUndefined();
    expect(plan.stop_on).toBeUndefined();
    expect(
      plan.steps.map((st) => [st.delay_s, Date.parse(st.due_at) - fixture.createdAt.getTime(), st.channel]),
    ).toEqual([
      [3600, 3_600_000, undefined],
      [7200, 7_200_000, undefined],
    ]);
  });
});

/** 09:00 UTC on the day `days` after today (UTC). */
function utcNine(days: number): Date {
  const d = new Date();
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + days, 9, 0, 0));
}
const WEEKDAY = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;

describe("send windows", () => {
  it("moves a step outside the window to its next opening in the lead's zone; the timer's TTL is for the moved time", async () => {
    const opening = utcNine(2);
    const day = WEEKDAY[opening.getUTCDay()]!;
    await putSequence("acme", "window", {
      steps: [{ delay: "1m", channel: "hook" }],
      send_window: { timezone: "Europe/London", days: [day], start: "09:00", end: "10:00" },
    });
    await scheduler();
    const inWindowZone = lead();
    const inKathmandu = lead();
    await submit(inWindowZone, { timezone: undefined });
    await submit(inKathmandu, { timezone: "Asia/Kathmandu" });

    const london = (await timersStored(broker.nc, broker.jsm, inWindowZone, 1)).steps[0]!;
    const londonNine = new Date(opening.getTime() - londonOffsetMs(opening));
    expect(london.due_at).toBe(londonNine.toISOString());
    expect(london.moved_from).toBe(new Date(inWindowZone.createdAt.getTime() + 60_000).toISOString());

    // Kathmandu is UTC+05:45 all year: 09:00 there is 03:15 UTC.
    const kathmandu = (await timersStored(broker.nc, broker.jsm, inKathmandu, 1)).steps[0]!;
    expect(kathmandu.due_at).toBe(new Date(opening.getTime() - (5 * 60 + 45) * 60_000).toISOString());

    const timer = await timerMessage(broker.jsm, inKathmandu, 1);
    const ttl = Number(timer?.header.get("Nats-TTL"));
    const secondsToDue = (Date.parse(kathmandu.due_at) - timer!.time.getTime()) / 1000;
    expect(ttl, "the TTL counts to the moved due time, not to created + delay").toBeGreaterThan(86_400);
    expect(Math.abs(ttl - secondsToDue)).toBeLessThanOrEqual(1);
    expect(timer?.json<{ data: { due_at: string } }>().data.due_at).toBe(kathmandu.due_at);
  });

  it("holds an SMS step to 08:00-21:00 in the recipient's zone, and says when no zone was known", async () => {
    // Due at 02:00 UTC tomorrow: night in UTC and in Europe/Berlin (the phone's country, one zone).
    const tomorrowTwo = new Date(utcNine(1).getTime() - 7 * 3_600_000);
    const delay = `${Math.ceil((tomorrowTwo.getTime() - Date.now()) / 1000) + 60}s`;
    await putSequence("acme", "texts", {
      steps: [
        { delay, channel: "sms" },
        { delay, channel: "hook" },
      ],
    });
    await scheduler();
    const unknown = lead();
    const german = lead();
    await submit(unknown);
    await submit(german, { phone_timezone: "Europe/Berlin" });

    const [sms, hook] = (await timersStored(broker.nc, broker.jsm, unknown, 1)).steps;
    const eightUtc = new Date(utcNine(1).getTime() - 3_600_000);
    expect(sms?.due_at).toBe(eightUtc.toISOString());
    expect(sms?.timezone_assumed).toBe(true);
    expect(sms?.moved_from).toBeDefined();
    // Steps never reorder: the hook step after it may not go before it.
    expect(hook?.due_at).toBe(sms?.due_at);
    expect(hook?.timezone_assumed).toBeUndefined();

    const berlinSms = (await timersStored(broker.nc, broker.jsm, german, 1)).steps[0]!;
    const berlinEight = new Date(eightUtc.getTime() - berlinOffsetMs(eightUtc));
    expect(berlinSms.due_at).toBe(berlinEight.toISOString());
    expect(berlinSms.timezone_assumed).toBeUndefined();
  });
});

function offsetMs(zone: string, at: Date): number {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" })
    .formatToParts(at)
    .find((p) => p.type === "timeZoneName")!.value;
  const m = /GMT(?:([+-])(\d\d):(\d\d))?/.exec(parts)!;
  return m[1] === undefined ? 0 : (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60_000;
}
const londonOffsetMs = (at: Date) => offsetMs("Europe/London", at);
const berlinOffsetMs = (at: Date) => offsetMs("Europe/Berlin", at);

describe("stop_on", () => {
  it("stops a plan by its sequence's outcomes only: not by spam when it names booked, by nurture when it names nurture", async () => {
    await putSequence("acme", "booked-only", {
      match: { urgency: ["high"] },
      steps: [HOUR_STEP],
      stop_on: ["booked"],
    });
    await putSequence("acme", "nurture-stops", {
      match: { urgency: ["normal"] },
      steps: [HOUR_STEP],
      stop_on: ["nurture"],
    });
    const s = await scheduler();
    const bookedOnly = lead();
    const nurture = lead();
    await submit(bookedOnly);
    await submit(nurture, { urgency: "normal" });
    await timersStored(broker.nc, broker.jsm, bookedOnly, 1);
    await timersStored(broker.nc, broker.jsm, nurture, 1);

    await publishOutcome(bookedOnly, "spam", true);
    await publishOutcome(nurture, "nurture", false);
    // followups_cancelled is logged once the plan is cancelled and then its timers purged.
    await waitFor(() => s.logsNamed("followups_cancelled").some((l) => l.lead_id === nurture.leadId), {
      description: "nurture to cancel the plan that names it",
    });
    expect((await readPlan(broker.nc, nurture))?.cancelled?.reason).toBe("outcome:nurture");
    expect(await timersOfLead(broker.jsm, nurture)).toBe(0);
    await waitFor(() => s.logsNamed("outcome_not_in_stop_on").some((l) => l.lead_id === bookedOnly.leadId), {
      description: "spam to be looked at against the plan",
    });
    const kept = await readPlan(broker.nc, bookedOnly);
    expect(kept?.cancelled).toBeUndefined();
    expect(kept?.steps[0]?.state).toBe("pending");
    expect(await timersOfLead(broker.jsm, bookedOnly)).toBe(1);

    await publishOutcome(bookedOnly, "booked", true);
    await waitFor(
      async () => (await readPlan(broker.nc, bookedOnly))?.cancelled?.reason === "outcome:booked",
      {
        description: "booked to cancel it",
      },
    );
  });
});

describe("enrolment by hand", () => {
  it("appends the sequence's steps after the plan's, from the enrolment, once however often it is asked", async () => {
    await putSequence("acme", "manual", {
      match: { min_pred_prob: 1 },
      steps: [
        { delay: "2h", channel: "hook" },
        { delay: "3h", channel: "email", template: "recap" },
      ],
      stop_on: ["spam"],
    });
    await putSequence("acme", "auto", { priority: 1, match: { min_pred_prob: 0.5 }, steps: [HOUR_STEP] });
    await scheduler();
    const fixture = lead();
    await submit(fixture);
    await timersStored(broker.nc, broker.jsm, fixture, 1);

    const requestedAt = new Date(Date.now() + 5_000);
    await enrol(fixture, "manual", requestedAt);
    await enrol(fixture, "manual", requestedAt);
    // One timer per lead's chain: step 1's (scoring) and the enrolment's first, step 2's.
    const plan = await timersStored(broker.nc, broker.jsm, fixture, 2);
    expect(plan.steps.map((st) => [st.step, st.sequence?.name, st.channel, Date.parse(st.due_at)])).toEqual([
      [1, undefined, "hook", fixture.createdAt.getTime() + 3_600_000],
      [2, "manual", "hook", requestedAt.getTime() + 7_200_000],
      [3, "manual", "email", requestedAt.getTime() + 10_800_000],
    ]);
    expect(plan.sequence?.name).toBe("auto");
    expect([...(plan.stop_on ?? [])].sort()).toEqual(["booked", "spam", "unqualified"]);
    // The second request found the steps in the plan: still three steps, and only two timers
    // (step 3's is stored when step 2 fires).
    await waitFor(async () => (await readPlan(broker.nc, fixture))?.steps.length === 3, {
      description: "plan",
    });
    const { stream, durable } = topo.consumers.enrolments;
    await waitFor(
      async () => {
        const info = await broker.jsm.consumers.info(stream, durable);
        return info.num_ack_pending === 0 && info.num_pending === 0;
      },
      { description: "both enrolments handled" },
    );
    expect((await readPlan(broker.nc, fixture))?.steps).toHaveLength(3);
    expect(await timersOfLead(broker.jsm, fixture)).toBe(2);
    expect(await timerMessage(broker.jsm, fixture, 2)).not.toBeNull();
    expect(await timerMessage(broker.jsm, fixture, 3)).toBeNull();
  });

  it("enrols a lead the scoring skipped, whatever its score, and unenrolling cancels what is pending until a new enrolment", async () => {
    await putSequence("acme", "strict", { match: { min_pred_prob: 0.99 }, steps: [HOUR_STEP] });
    await putSequence("acme", "later", {
      match: { min_pred_prob: 0.99 },
      steps: [{ delay: "4h", channel: "hook" }],
    });
    const s = await scheduler();
    const fixture = lead({ predProb: 0.2 });
    await submit(fixture);
    expect((await planOf(fixture)).skipped).toBe("no_matching_sequence");

    await enrol(fixture, "strict");
    const enrolled = await timersStored(broker.nc, broker.jsm, fixture, 1);
    expect(enrolled.skipped).toBeUndefined();
    expect(enrolled.steps.map((st) => [st.step, st.sequence?.name, st.state])).toEqual([
      [1, "strict", "pending"],
    ]);

    await unenrol(fixture);
    const stopped = await waitFor(
      async () => {
        const plan = await readPlan(broker.nc, fixture);
        return plan?.cancelled ? plan : null;
      },
      { description: "the unenrolment" },
    );
    expect(stopped.cancelled?.reason).toBe("unenrolled");
    expect(stopped.steps.map((st) => st.state)).toEqual(["cancelled"]);
    expect(await metricValue(s.registry, "followups_cancelled_total", { stage: "pending" })).toBe(1);

    await enrol(fixture, "later");
    const again = await timersStored(broker.nc, broker.jsm, fixture, 2);
    expect(again.cancelled, "an enrolment lifts an unenrolment").toBeUndefined();
    expect(again.steps.map((st) => [st.step, st.sequence?.name, st.state])).toEqual([
      [1, "strict", "cancelled"],
      [2, "later", "pending"],
    ]);
    expect(again.stop_on).toEqual(["booked", "unqualified", "spam"]);
  });
});

describe("a sequence written just before a lead", () => {
  it("applies to that lead in whichever of two scheduler copies plans it", async () => {
    await putSequence("acme", "edited", { steps: [HOUR_STEP] });
    await scheduler();
    await scheduler();
    const js = jetstream(broker.nc);
    for (let round = 1; round <= 12; round++) {
      const revision = await putSequence("acme", "edited", {
        steps: [{ delay: `${round}h`, channel: "hook" }],
      });
      const fixture = lead();
      await js.publish(
        subjects.leadScored(fixture.tenant, fixture.leadId),
        encodeEvent(scoredEvent(fixture)),
      );
      const plan = await timersStored(broker.nc, broker.jsm, fixture, 1);
      expect(plan.sequence, `round ${round}`).toEqual({ name: "edited", revision });
      expect(plan.steps[0]?.delay_s).toBe(round * 3600);
    }
  });

  it("is waited for before planning: a copy whose watch stopped refuses to plan rather than plan from stale sequences", async () => {
    await putSequence("acme", "edited", { steps: [HOUR_STEP] });
    const { logger } = capturedLogger();
    const kv = await new Kvm(broker.nc).open(topo.buckets.sequences.bucket);
    const cache = await SequenceCache.start(kv, topo.buckets.sequences.bucket, broker.jsm, logger);
    expect(cache.get("acme", "edited")?.steps[0]?.delay).toBe("1h");
    await expect(cache.upToDate(200)).resolves.toBeUndefined();
    cache.stop();
    const revision = await putSequence("acme", "edited", { steps: [{ delay: "2h", channel: "hook" }] });
    await expect(cache.upToDate(200)).rejects.toThrow(`did not reach revision ${revision}`);
  });
});

describe("experiments", () => {
  it("assigns each lead its variant and holdout from a hash: recorded in the plan, the held-out get no timer", async () => {
    const ab = {
      holdout_pct: 30,
      steps: [
        {
          delay: "1h",
          channel: "email" as const,
          variants: [
            { name: "a", template: "t-a", weight: 50 },
            { name: "b", template: "t-b", weight: 50 },
          ],
        },
        { delay: "2h", channel: "hook" as const },
      ],
    };
    await putSequence("acme", "ab", ab);
    const s = await scheduler();
    const fixtures = Array.from({ length: 30 }, () => lead());
    for (const fixture of fixtures) await submit(fixture);
    const stored = await waitFor(
      async () => {
        const plans = await Promise.all(fixtures.map((f) => readPlan(broker.nc, f)));
        return plans.every((p) => p !== null) ? (plans as FollowupPlan[]) : null;
      },
      { description: "every plan" },
    );
    const sequence = { name: "ab", ...Sequence.parse(ab) };
    let held = 0;
    for (const [i, plan] of stored.entries()) {
      const expected = planExperiment("acme", sequence, fixtures[i]!.leadId);
      expect(plan.sequence?.name).toBe("ab");
      expect(plan.holdout ?? false, fixtures[i]!.leadId).toBe(expected.holdout);
      if (expected.holdout) {
        held++;
        expect(plan.steps).toEqual([]);
        expect(await timersOfLead(broker.jsm, fixtures[i]!)).toBe(0);
      } else {
        expect(plan.steps.map((st) => [st.variant, st.template])).toEqual([
          [expected.steps[0]!.variant, expected.steps[0]!.template],
          [undefined, undefined],
        ]);
        await waitFor(async () => (await timersOfLead(broker.jsm, fixtures[i]!)) === 1, {
          description: `${fixtures[i]!.leadId}'s timer`,
        });
      }
    }
    // 30 leads at 30%: some held out, most not (the hash is pinned in contracts' tests).
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(fixtures.length);
    expect(await metricValue(s.registry, "followups_skipped_total", { reason: "holdout" })).toBe(held);
  });
});
