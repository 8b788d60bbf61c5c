// Fault 9: the SMS provider (the fake Twilio) answers 429 Too Many Requests (code 20429, with a
// Retry-After) for 8 s, then 503 Service Unavailable for 8 s, then recovers. Every follow-up is an
// SMS (FOLLOWUP_CHANNEL=sms, the tenant's Twilio settings from /v1/channels): each one that came
// due meanwhile is retried with back-off and sent once the provider is back; none is lost, none
// becomes a dead letter, and none is sent twice beyond the work in flight at the fault (Twilio
// has no idempotency key: a message it accepted is a message sent).

import { setTimeout as sleep } from "node:timers/promises";
import type { LeadAccepted } from "@followup/contracts";
import { waitFor } from "@followup/nats-harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  channelTestEnv,
  type Engine,
  type FakeTwilio,
  putTwilioChannel,
  REFERENCE_LEADS,
  startEngine,
  startFakeTwilio,
  zoneWhere,
} from "../support/index.js";
import {
  ackPending,
  budget,
  DISPATCHER_CONSUMERS,
  expectedFollowups,
  scaled,
  waitForQuiet,
} from "./tally.js";

const LEADS = scaled(20, 200);
const DELAYS_S = [2, 4];
/** How long each failure lasts: a fault held for a set time, not a wait for something. */
const PHASE_MS = 8_000;

let engine: Engine;
let twilio: FakeTwilio;

beforeAll(async () => {
  twilio = await startFakeTwilio();
  engine = await startEngine({
    schedules: DELAYS_S.map((d) => `${d}s`).join(","),
    env: channelTestEnv(),
    serviceEnv: {
      dispatcher: {
        FOLLOWUP_CHANNEL: "sms",
        TWILIO_API_URL: twilio.url,
        // Back-off up to 2 s with full jitter: 40 attempts outlast a 16 s outage by far.
        FOLLOWUP_MAX_ATTEMPTS: "40",
        FOLLOWUP_RETRY_BASE_MS: "200",
        FOLLOWUP_RETRY_MAX_MS: "2000",
      },
    },
  });
  await putTwilioChannel(engine.api, twilio);
}, 90_000);

afterAll(async () => {
  await engine?.stop();
  await twilio?.close();
});

/** The follow-up (`acme:<leadId>:<step>`) a message was sent for, from its status callback URL. */
function followupOf(statusCallback: string | undefined): string {
  const query = new URL(statusCallback ?? "http://x/").searchParams;
  return `acme:${query.get("lead")}:${query.get("step")}`;
}

describe("an SMS provider answering 429, then 5xx, for 16 s", () => {
  it(
    `sends every follow-up of ${LEADS} leads once it recovers: nothing lost, nothing sent twice, no dead letter`,
    async () => {
      const startedAt = Date.now();
      const inFlightAtFault = await ackPending(engine.natsUrl, DISPATCHER_CONSUMERS);
      twilio.failNext("too_many_requests", { times: 1_000_000, headers: { "retry-after": "1" } });
      const zone = zoneWhere("day");
      const accepted: LeadAccepted[] = [];
      for (let i = 0; i < LEADS; i++) {
        const phone = `+1415556${String(1000 + i).padStart(4, "0")}`;
        accepted.push(
          await engine.api.postLead({
            name: `Lead ${i}`,
            phone,
            timezone: zone,
            details: REFERENCE_LEADS.high.details,
          }),
        );
      }
      await sleep(Math.max(0, PHASE_MS - (Date.now() - startedAt)));
      const throttled = twilio.requests.length;
      twilio.clearFailures();
      twilio.failNext("service_unavailable", { times: 1_000_000 });
      await sleep(PHASE_MS);
      const refused = twilio.requests.length;
      expect(twilio.messages).toEqual([]);
      twilio.clearFailures();

      const expected = expectedFollowups(accepted, DELAYS_S.length);
      const sent = () => new Set(twilio.messages.map((m) => followupOf(m.statusCallback)));
      await waitFor(() => [...expected].every((id) => sent().has(id)), {
        description: `${expected.size} SMS sent (have ${sent().size})`,
        timeoutMs: budget(60_000),
        intervalMs: 200,
      });
      await waitForQuiet(engine.natsUrl, budget(30_000));
      const perFollowup = new Map<string, number>();
      for (const message of twilio.messages) {
        const id = followupOf(message.statusCallback);
        perFollowup.set(id, (perFollowup.get(id) ?? 0) + 1);
      }
      const duplicated = [...perFollowup.values()].reduce((sum, n) => sum + n - 1, 0);
      console.info(
        `[fault] ${JSON.stringify({ scenario: "provider 429 then 5xx 16 s", accepted: accepted.length, expected: expected.size, sent: perFollowup.size, duplicated, throttled, refused, inFlightAtFault, durationMs: Date.now() - startedAt })}`,
      );
      expect([...perFollowup.keys()].filter((id) => !expected.has(id))).toEqual([]);
      expect(duplicated).toBeLessThanOrEqual(inFlightAtFault);
      // Each follow-up was tried while the provider refused (more refusals than follow-ups), none given up.
      expect(throttled).toBeGreaterThan(0);
      expect(refused - throttled).toBeGreaterThan(0);
      const metrics = await engine.services.dispatcher[0]!.metrics();
      expect(metrics.value("followup_retries_total", { reason: "status_429" })).toBeGreaterThan(0);
      expect(metrics.value("followup_retries_total", { reason: "status_5xx" })).toBeGreaterThan(0);
      expect(
        metrics.value("followup_messages_total", { channel: "sms", provider: "twilio", result: "sent" }),
      ).toBe(expected.size + duplicated);
      expect(metrics.value("followup_dead_letters_total")).toBe(0);
      expect((await engine.api.deadLetters()).count).toBe(0);
    },
    budget(150_000),
  );
});
