import { countryTimeZones } from "@followup/contracts";
import { type CountryCode, isSupportedCountry, parsePhoneNumberFromString } from "libphonenumber-js/min";

/**
 * A lead's phone number in E.164, by libphonenumber-js with its `min` metadata (Google's
 * libphonenumber rules). A number written without `+` needs the region it was written in,
 * passed in by the caller (the tenant's setting): nothing is guessed from the server's locale.
 */

export type PhoneNumberResult =
  | {
      ok: true;
      /** `+14155552671` */
      e164: string;
      /** ISO 3166-1 alpha-2; absent for non-geographic numbers (+800, +882, ...). */
      country?: CountryCode;
      /**
       * The country's IANA time zones, from the runtime's CLDR data (`Intl.Locale` time zones);
       * absent when the runtime cannot tell. The number itself says nothing about its zone.
       */
      timeZones?: string[];
      /** The country's one time zone, when it has exactly one (quiet hours can then use it). */
      timeZone?: string;
    }
  | { ok: false; reason: "not_a_number" | "invalid_region" | "invalid_number" };

export function normalisePhone(input: string, defaultRegion?: string): PhoneNumberResult {
  let region: CountryCode | undefined;
  if (defaultRegion !== undefined) {
    const upper = defaultRegion.toUpperCase();
    if (!isSupportedCountry(upper)) return { ok: false, reason: "invalid_region" };
    region = upper;
  }
  // extract: false: the whole text must be the number, not "call me on ..." with one inside.
  const parsed = parsePhoneNumberFromString(input.trim(), { defaultCountry: region, extract: false });
  if (!parsed) return { ok: false, reason: "not_a_number" };
  if (!parsed.isValid()) return { ok: false, reason: "invalid_number" };
  const country = parsed.country;
  const timeZones = country ? countryTimeZones(country) : undefined;
  return {
    ok: true,
    e164: parsed.number,
    ...(country ? { country } : {}),
    ...(timeZones ? { timeZones } : {}),
    ...(timeZones?.length === 1 ? { timeZone: timeZones[0] } : {}),
  };
}
