import type { EmailSettings } from "@followup/contracts";
import { unsubscribeToken, unsubscribeUrl } from "@followup/service-kit";
import type { ChannelSpec } from "../message-channel.js";
import type { ProviderClient } from "../provider/answer.js";
import { emailAddress } from "./message.js";
import type { SendGridClient } from "./sendgrid.js";
import type { SmtpClient } from "./smtp.js";

/**
 * E-mail through the tenant's SendGrid account or SMTP relay: to the lead's address, checked
 * against the tenant's email suppressions, with the RFC 8058 one-click unsubscribe link (an HMAC
 * of tenant, lead and address with UNSUBSCRIBE_SECRET, on PUBLIC_BASE_URL). Without those two no
 * e-mail is sent: every e-mail carries its unsubscribe link.
 */
export function emailChannel(options: {
  sendgrid: SendGridClient;
  smtp: SmtpClient;
  publicBaseUrl?: string | undefined;
  unsubscribeSecret?: readonly string[] | undefined;
}): ChannelSpec<EmailSettings> {
  const { sendgrid, smtp, publicBaseUrl, unsubscribeSecret } = options;
  return {
    name: "email",
    client: (settings) => (settings.provider === "smtp" ? smtp : sendgrid) as ProviderClient<EmailSettings>,
    clients: () => [sendgrid, smtp] as ProviderClient<EmailSettings>[],
    recipient(lead) {
      const to = emailAddress.safeParse(lead.email ?? "");
      if (!to.success)
        return { refused: "invalid_recipient", why: "lead.email: the lead has no e-mail address" };
      return { address: to.data, suppression: "email" };
    },
    links(followup, lead, recipient) {
      if (!publicBaseUrl || !unsubscribeSecret?.length)
        return {
          refused: "invalid_settings",
          why: "PUBLIC_BASE_URL and UNSUBSCRIBE_SECRET must be set on the dispatcher: every e-mail carries its one-click unsubscribe link",
        };
      const token = unsubscribeToken(unsubscribeSecret, {
        tenant: followup.tenant,
        leadId: lead.lead_id,
        address: recipient.address,
      });
      return { unsubscribeUrl: unsubscribeUrl(publicBaseUrl, token) };
    },
  };
}
