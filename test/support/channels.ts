import { randomBytes } from "node:crypto";
import type { ApiClient } from "./api.js";
import type { FakeTwilio } from "./fakes/index.js";

/**
 * What a test that sends through the channels sets up: the variables lead-intake and the
 * dispatcher share (a fresh sealing key and unsubscribe secret, a public base URL), the tenant's
 * Twilio settings, and a time zone where it is day (SMS may go) or night right now.
 */

export const PUBLIC_BASE_URL = "https://followup.example.test";

/** CHANNEL_SECRETS_KEY, UNSUBSCRIBE_SECRET and PUBLIC_BASE_URL, new for each engine. */
export function channelTestEnv() {
  return {
    CHANNEL_SECRETS_KEY: randomBytes(32).toString("base64"),
    UNSUBSCRIBE_SECRET: randomBytes(32).toString("hex"),
    PUBLIC_BASE_URL,
  };
}

/** The SMS sender every test tenant sends from. */
export const SMS_FROM = "+15017122661";

/** PUT /v1/channels/sms with the fake's account; throws unless stored. */
export async function putTwilioChannel(api: ApiClient, twilio: FakeTwilio): Promise<unknown> {
  const answer = await api.request("PUT", "/v1/channels/sms", {
    body: {
      provider: "twilio",
      account_sid: twilio.account.accountSid,
      auth_token: twilio.account.authToken,
      from: SMS_FROM,
    },
  });
  if (answer.status !== 200 && answer.status !== 201)
    throw new Error(`PUT /v1/channels/sms: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

const ZONES = [
  "UTC",
  "Asia/Tokyo",
  "America/New_York",
  "Europe/Berlin",
  "Australia/Sydney",
  "America/Los_Angeles",
];

/**
 * A zone where it is now between 09:00 and 20:00 (day: SMS may go, for an hour at least), or
 * between 22:00 and 06:00 (night); the zones' offsets cover every hour of the day for both.
 */
export function zoneWhere(time: "day" | "night", now = new Date()): string {
  for (const zone of ZONES) {
    const hour = Number(
      new Intl.DateTimeFormat("en-GB", { hour: "numeric", hourCycle: "h23", timeZone: zone }).format(now),
    );
    if (time === "day" ? hour >= 9 && hour < 20 : hour >= 22 || hour < 6) return zone;
  }
  throw new Error(`no zone among ${ZONES.join(", ")} is at ${time} now`);
}
