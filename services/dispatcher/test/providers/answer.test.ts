import { describe, expect, it } from "vitest";
import { errorText, redact, refusal, unanswered } from "../../src/channels/provider/answer.js";

// The clients' tests show no provider answer carries a secret; these show the scrub itself works
// when one does (a provider echoing a key, an error message holding a URL with its token).

describe("keeping secrets out of answers", () => {
  const secret = "sk_live_0123456789abcdef";

  it("replaces a secret and its URL-encoded form, and leaves short strings alone", () => {
    expect(redact(`key ${secret} and ${encodeURIComponent("a/b+c=0123")}`, [secret, "a/b+c=0123"])).toBe(
      "key [redacted] and [redacted]",
    );
    expect(redact("the token abc is short", ["abc"])).toBe("the token abc is short");
  });

  it("scrubs a provider's words and an error without an answer", () => {
    expect(errorText(`invalid key\n  ${secret}`, [secret])).toBe("invalid key [redacted]");
    const err = Object.assign(new Error(`connect to https://hooks.example/services/${secret} failed`), {
      code: "ECONNRESET",
    });
    const answer = unanswered("slack", err, [secret]);
    expect(answer).toMatchObject({
      classification: { kind: "retry", reason: "connection" },
      statusCode: null,
    });
    expect(JSON.stringify(answer)).not.toContain(secret);
    expect(answer.error).toContain("[redacted]");
  });

  it("builds a refusal with the wait for a retry and the reason and effect for a permanent failure", () => {
    expect(
      refusal({ kind: "retry", reason: "status_429" }, 429, "x", {
        retryAfterMs: 5,
        permanentReason: "opted_out",
      }),
    ).toEqual({
      classification: { kind: "retry", reason: "status_429" },
      statusCode: 429,
      error: "x",
      retryAfterMs: 5,
    });
    expect(
      refusal({ kind: "permanent" }, 400, "x", {
        retryAfterMs: 5,
        providerCode: "21610",
        permanentReason: "opted_out",
        effect: "suppress_recipient",
      }),
    ).toEqual({
      classification: { kind: "permanent" },
      statusCode: 400,
      error: "x",
      providerCode: "21610",
      permanentReason: "opted_out",
      effect: "suppress_recipient",
    });
    expect(refusal({ kind: "permanent" }, 422, "x", {}).permanentReason).toBe("rejected");
  });
});
