import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  readStatusCallbackRef,
  readUnsubscribeToken,
  twilioSignature,
  twilioStatusCallbackUrl,
  unsubscribeToken,
  unsubscribeUrl,
  verifyTwilioSignature,
  verifyUnsubscribeToken,
} from "../src/index.js";

// Twilio's worked example (auth token 12345): the first row is the vector of Twilio's SDK tests
// (twilio-csharp RequestValidatorTest), the second the one of their security docs. Both were also
// reproduced outside this code: printf '%s' '<url><sorted name+value pairs>' |
// openssl dgst -sha1 -hmac 12345 -binary | openssl base64.
const URL_ = "https://mycompany.com/myapp.php?foo=1&bar=2";
const VECTORS = [
  {
    params: {
      CallSid: "CA1234567890ABCDE",
      Caller: "+14158675309",
      Digits: "1234",
      From: "+14158675309",
      To: "+18005551212",
    },
    signature: "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
  },
  {
    params: {
      To: "+18005551212",
      From: "+12349013030",
      Digits: "1234",
      Caller: "+12349013030",
      CallSid: "CA1234567890ABCDE",
    },
    signature: "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
  },
];

describe("Twilio request signatures", () => {
  it.each(VECTORS)("reproduce Twilio's documented signature $signature", ({ params, signature }) => {
    expect(twilioSignature(URL_, params, "12345")).toBe(signature);
    // The same parameters as a parsed form body sign the same way: order of arrival does not matter.
    const form = new URLSearchParams(Object.entries(params).reverse());
    expect(twilioSignature(URL_, form, "12345")).toBe(signature);
    expect(verifyTwilioSignature(URL_, form, signature, "12345")).toBe(true);
    expect(verifyTwilioSignature(URL_, form, [signature], "12345")).toBe(true);
  });

  it("agree with an HMAC computed here from the published rule", () => {
    const params = new URLSearchParams({ MessageStatus: "delivered", MessageSid: "SM1", ErrorCode: "" });
    const expected = createHmac("sha1", "token-abc")
      .update("https://engine.example/hooks/twilio/status/acmeErrorCodeMessageSidSM1MessageStatusdelivered")
      .digest("base64");
    expect(twilioSignature("https://engine.example/hooks/twilio/status/acme", params, "token-abc")).toBe(
      expected,
    );
  });

  it("sign a repeated parameter once per value, values in order", () => {
    const params = new URLSearchParams([
      ["MediaUrl", "b"],
      ["Body", "x"],
      ["MediaUrl", "a"],
    ]);
    const expected = createHmac("sha1", "t").update("https://h/pBodyxMediaUrlaMediaUrlb").digest("base64");
    expect(twilioSignature("https://h/p", params, "t")).toBe(expected);
    expect(twilioSignature("https://h/p", { Body: "x", MediaUrl: ["b", "a"] }, "t")).toBe(expected);
  });

  const [{ params, signature }] = VECTORS as [(typeof VECTORS)[number]];
  it.each([
    ["a changed parameter value", URL_, { ...params, Digits: "9999" }, signature, "12345"],
    ["an added parameter", URL_, { ...params, Extra: "1" }, signature, "12345"],
    ["a removed parameter", URL_, { ...params, Digits: undefined as never }, signature, "12345"],
    ["another URL", "https://mycompany.com/myapp.php?foo=1&bar=3", params, signature, "12345"],
    ["http instead of https", URL_.replace("https:", "http:"), params, signature, "12345"],
    ["another auth token", URL_, params, signature, "54321"],
    ["an empty auth token", URL_, params, signature, ""],
    ["a flipped signature byte", URL_, params, `S${signature.slice(1)}`, "12345"],
    ["a truncated signature", URL_, params, signature.slice(0, 20), "12345"],
    ["no signature", URL_, params, undefined, "12345"],
    ["an empty signature", URL_, params, "", "12345"],
  ])("refuse %s", (_case, url, tampered, given, token) => {
    const clean = Object.fromEntries(Object.entries(tampered).filter(([, v]) => v !== undefined)) as Record<
      string,
      string
    >;
    expect(verifyTwilioSignature(url, clean, given, token)).toBe(false);
  });

  it("build the status callback URL from the public base URL, naming the attempt it reports on", () => {
    expect(twilioStatusCallbackUrl("https://engine.example/", "acme")).toBe(
      "https://engine.example/hooks/twilio/status/acme",
    );
    const ref = { leadId: "L-42", step: 2, attempt: 3, replays: 1 };
    const url = twilioStatusCallbackUrl("https://engine.example", "acme", ref);
    expect(url).toBe("https://engine.example/hooks/twilio/status/acme?lead=L-42&step=2&attempt=3&replays=1");
    expect(readStatusCallbackRef(new URL(url).searchParams)).toEqual(ref);
    for (const query of [
      "lead=L-42&step=0&attempt=1&replays=0",
      "lead=a.b&step=1&attempt=1&replays=0",
      "step=1",
    ])
      expect(readStatusCallbackRef(new URLSearchParams(query)), query).toBeNull();
  });
});

describe("one-click unsubscribe tokens", () => {
  const secret = "unsubscribe-secret-0123456789abcdef";
  const subject = { tenant: "acme", leadId: "L-42", address: "Ada@Example.com" };

  it("name the tenant and lead, carry an HMAC-SHA256 of tenant, lead and address, and verify", () => {
    const token = unsubscribeToken(secret, subject);
    const mac = createHmac("sha256", secret)
      .update("followup-unsubscribe-v1\nacme\nL-42\nada@example.com")
      .digest("base64url");
    expect(token).toBe(`acme.L-42.${mac}`);
    expect(token).not.toContain("ada");
    expect(readUnsubscribeToken(token)).toEqual({ tenant: "acme", leadId: "L-42" });
    expect(verifyUnsubscribeToken(secret, token, subject)).toBe(true);
    // The address is compared case-insensitively and without surrounding space.
    expect(verifyUnsubscribeToken(secret, token, { ...subject, address: " ada@example.COM " })).toBe(true);
    expect(unsubscribeUrl("https://engine.example/", token)).toBe(`https://engine.example/u/${token}`);
  });

  it("verify under any of the rotating secrets, signing with the first", () => {
    const old = unsubscribeToken("old-secret-0123456789", subject);
    const rotated = ["new-secret-0123456789", "old-secret-0123456789"];
    expect(verifyUnsubscribeToken(rotated, old, subject)).toBe(true);
    expect(unsubscribeToken(rotated, subject)).toBe(unsubscribeToken("new-secret-0123456789", subject));
    expect(verifyUnsubscribeToken(["new-secret-0123456789"], old, subject)).toBe(false);
  });

  const token = unsubscribeToken(secret, subject);
  const mac = token.split(".")[2]!;
  /** The MAC's last character with its two unused (low) bits flipped: it decodes to the same bytes. */
  const lastSpelling = (text: string) => {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    return alphabet[alphabet.indexOf(text.at(-1)!) ^ 1]!;
  };
  it.each([
    ["another address", token, { ...subject, address: "eve@example.com" }, secret],
    ["another lead", token, { ...subject, leadId: "L-43" }, secret],
    ["another tenant", token, { ...subject, tenant: "globex" }, secret],
    ["the token's lead swapped", `acme.L-43.${mac}`, { ...subject, leadId: "L-43" }, secret],
    ["another secret", token, subject, "another-secret-0123456789"],
    ["a flipped MAC character", `acme.L-42.${mac[0] === "A" ? "B" : "A"}${mac.slice(1)}`, subject, secret],
    ["a truncated MAC", token.slice(0, -2), subject, secret],
    // The last character's two unused bits changed: the same bytes, but not the token that was sent.
    ["another spelling of the MAC", `${token.slice(0, -1)}${lastSpelling(mac)}`, subject, secret],
    ["a missing part", `acme.${mac}`, subject, secret],
    ["an extra part", `${token}.x`, subject, secret],
    ["an empty token", "", subject, secret],
  ])("refuse %s", (_case, given, who, key) => {
    expect(verifyUnsubscribeToken(key, given, who)).toBe(false);
  });

  it("refuse to mint a token for ids outside the id alphabet or without a secret", () => {
    expect(() => unsubscribeToken(secret, { ...subject, tenant: "a.b" })).toThrow(/tenant/);
    expect(() => unsubscribeToken(secret, { ...subject, leadId: "" })).toThrow(/leadId/);
    expect(() => unsubscribeToken("", subject)).toThrow(/secret/);
    expect(readUnsubscribeToken("a.b")).toBeNull();
  });
});
