import { isKnownTimeZone, SMS_SEND_HOURS, type SmsSettings } from "@followup/contracts";
import { twilioStatusCallbackUrl } from "@followup/service-kit";
import type { ChannelSpec } from "../message-channel.js";
import { normalisePhone } from "./phone.js";
import type { TwilioClient } from "./twilio.js";

/**
 * SMS through the tenant's Twilio account: to the lead's phone in E.164, checked against the
 * tenant's sms suppressions, sent only within SMS_SEND_HOURS in the recipient's zone (the lead's
 * own, else the zone of the number's country when it has one, else UTC), with a status callback
 * that names the attempt when PUBLIC_BASE_URL is set.
 */
export function smsChannel(options: {
  twilio: TwilioClient;
  publicBaseUrl?: string | undefined;
}): ChannelSpec<SmsSettings> {
  const { twilio, publicBaseUrl } = options;
  return {
    name: "sms",
    client: () => twilio,
    clients: () => [twilio],
    recipient(lead, settings) {
      const phone = normalisePhone(lead.phone, settings.default_region);
      if (!phone.ok)
        return phone.reason === "invalid_region"
          ? {
              refused: "invalid_settings",
              why: "settings.default_region: expected a supported ISO 3166-1 alpha-2 region",
            }
          : {
              refused: "invalid_recipient",
              why: `lead.phone: not a phone number in E.164 or of the default region (${phone.reason})`,
            };
      const own = lead.timezone !== undefined && isKnownTimeZone(lead.timezone) ? lead.timezone : undefined;
      const zone = own ?? phone.timeZone;
      return {
        address: phone.e164,
        suppression: "sms",
        hours: { windows: [SMS_SEND_HOURS], ...(zone ? { zone } : {}) },
      };
    },
    links(followup) {
      if (!publicBaseUrl) return {};
      const { due } = followup;
      return {
        statusCallbackUrl: twilioStatusCallbackUrl(publicBaseUrl, followup.tenant, {
          leadId: due.lead_id,
          step: due.step,
          attempt: followup.attempt,
          replays: due.replays,
        }),
      };
    },
  };
}
