import { ErrorEnvelope, LeadRequest, OutcomeRequest } from "@followup/contracts";
import { describe, expect, it } from "vitest";
import {
  BrokerUnavailableError,
  errorEnvelope,
  HttpError,
  mapError,
  parseWith,
  validationError,
} from "../src/errors.js";

const limits = { bodyLimitBytes: 16_384 };

function fastifyError(code: string, statusCode: number): Error {
  return Object.assign(new Error(`fastify says ${code}`), { code, statusCode });
}

describe("validation errors name each bad field and the rule it broke", () => {
  it("for a lead", () => {
    const result = LeadRequest.safeParse({
      name: "A",
      phone: 5551234,
      details: "x".repeat(2001),
      email: "nope",
    });
    expect(result.success).toBe(false);
    const err = validationError(result.error!);
    expect(err.status).toBe(400);
    expect(err.code).toBe("validation_error");
    expect(err.details).toEqual([
      { path: "name", message: "must be at least 2 characters" },
      { path: "phone", message: expect.stringMatching(/expected string, received number/) },
      { path: "details", message: "must be at most 2000 characters" },
      { path: "email", message: "must be an e-mail address" },
    ]);
    expect(err.message).toContain("name: must be at least 2 characters");
    expect(err.message).toContain("details: must be at most 2000 characters");
  });

  it("for a body that is not an object", () => {
    for (const body of [undefined, [], "text", 42, null]) {
      try {
        parseWith(LeadRequest, body);
        expect.unreachable();
      } catch (err) {
        expect((err as HttpError).details?.[0]?.path).toBe("(root)");
      }
    }
  });

  it("for an outcome outside the enum, listing the allowed values", () => {
    try {
      parseWith(OutcomeRequest, { outcome: "won" });
      expect.unreachable();
    } catch (err) {
      const details = (err as HttpError).details!;
      expect(details[0]!.path).toBe("outcome");
      expect(details[0]!.message).toMatch(/booked.*ghosted.*qualified.*unqualified.*nurture.*spam/);
    }
  });

  it("returns the parsed value when valid (trimmed, defaults applied)", () => {
    expect(parseWith(LeadRequest, { name: "  Bob ", phone: " +1 555 0100 " })).toEqual({
      name: "Bob",
      phone: "+1 555 0100",
      details: "",
    });
  });
});

describe("mapError: one mapping from anything thrown to status and code", () => {
  it.each([
    ["FST_ERR_CTP_INVALID_MEDIA_TYPE", 415, 415, "unsupported_media_type"],
    ["FST_ERR_CTP_BODY_TOO_LARGE", 413, 413, "payload_too_large"],
    ["FST_ERR_CTP_INVALID_JSON_BODY", 400, 400, "invalid_json"],
    ["FST_ERR_CTP_EMPTY_JSON_BODY", 400, 400, "invalid_json"],
    ["FST_ERR_CTP_INVALID_CONTENT_LENGTH", 400, 400, "invalid_json"],
    ["SOME_OTHER_4XX", 404, 404, "not_found"],
    ["SOME_OTHER_4XX", 400, 400, "validation_error"],
  ])("%s (%i) -> %i %s", (code, statusCode, status, expected) => {
    const mapped = mapError(fastifyError(code, statusCode), limits);
    expect(mapped).toMatchObject({ status, code: expected, internal: false });
  });

  it("says the body limit", () => {
    expect(mapError(fastifyError("FST_ERR_CTP_BODY_TOO_LARGE", 413), limits).message).toContain(
      "16384 bytes",
    );
  });

  it("keeps an HttpError's status, code, details and headers", () => {
    const err = new HttpError(429, "rate_limited", "slow down", undefined, { "retry-after": "7" });
    expect(mapError(err, limits)).toEqual({
      status: 429,
      code: "rate_limited",
      message: "slow down",
      headers: { "retry-after": "7" },
      internal: false,
    });
  });

  it("turns an unavailable broker into 503 service_unavailable with Retry-After", () => {
    const mapped = mapError(new BrokerUnavailableError("NATS disconnected; reconnecting"), limits);
    expect(mapped).toMatchObject({
      status: 503,
      code: "service_unavailable",
      headers: { "retry-after": "5" },
    });
    expect(mapped.message).toContain("NATS disconnected");
  });

  it("hides the message of anything unexpected behind a 500", () => {
    const mapped = mapError(new TypeError("cannot read secret of undefined"), limits);
    expect(mapped).toMatchObject({ status: 500, code: "internal_error", internal: true });
    expect(mapped.message).not.toContain("secret");
    expect(mapError(fastifyError("X", 502), limits).status).toBe(500);
  });

  it("builds the contract's error envelope", () => {
    const envelope = errorEnvelope(
      mapError(validationError(LeadRequest.safeParse({}).error!), limits),
      "r-1",
    );
    expect(ErrorEnvelope.parse(envelope)).toEqual(envelope);
    expect(envelope).toMatchObject({ ok: false, request_id: "r-1", error: { code: "validation_error" } });
    expect(envelope.error.details?.map((d) => d.path)).toEqual(["name", "phone"]);
  });
});
