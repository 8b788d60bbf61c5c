import { env } from "@followup/service-kit";

export const TWILIO_API_URL = "https://api.twilio.com";
export const SENDGRID_API_URL = "https://api.sendgrid.com";

/**
 * The provider clients' variables, for the dispatcher's config to spread in when the channels are
 * wired: the API base URLs default to the real providers, so tests and staging point at a fake.
 */
export const providerEnv = {
  TWILIO_API_URL: env.url(TWILIO_API_URL, ["http", "https"]),
  SENDGRID_API_URL: env.url(SENDGRID_API_URL, ["http", "https"]),
  PROVIDER_TIMEOUT_MS: env.number(10_000, { min: 100, max: 120_000, integer: true }),
};
