import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  openSecret,
  parseSealingKey,
  SealError,
  SealingKeyError,
  SealingKeyring,
  sealingKeyId,
  sealingKeyring,
  sealSecret,
} from "../src/sealing.js";

const keyText = () => randomBytes(32).toString("base64");

describe("sealSecret / openSecret", () => {
  const ring = sealingKeyring(keyText());

  it("round-trips, with a fresh 12-byte IV each time and the key's id in the record", () => {
    const a = sealSecret(ring, "s3cret-value", "ctx");
    const b = sealSecret(ring, "s3cret-value", "ctx");
    expect(Buffer.from(a.iv, "base64url")).toHaveLength(12);
    expect(a.iv).not.toBe(b.iv);
    expect(a.data).not.toBe(b.data);
    expect(a.kid).toBe(ring.current.id);
    expect(JSON.stringify(a)).not.toContain("s3cret");
    expect(openSecret(ring, a, "ctx")).toEqual({ value: "s3cret-value", stale: false });
  });

  it("fails closed on a changed byte, a changed tag, another context, or an unknown key", () => {
    const sealed = sealSecret(ring, "s3cret-value", "acme.sms.auth_token");
    const flip = (text: string) => {
      const bytes = Buffer.from(text, "base64url");
      bytes[0] = bytes[0]! ^ 1;
      return bytes.toString("base64url");
    };
    expect(() => openSecret(ring, { ...sealed, data: flip(sealed.data) }, "acme.sms.auth_token")).toThrow(
      SealError,
    );
    expect(() => openSecret(ring, { ...sealed, tag: flip(sealed.tag) }, "acme.sms.auth_token")).toThrow(
      SealError,
    );
    expect(() => openSecret(ring, { ...sealed, iv: flip(sealed.iv) }, "acme.sms.auth_token")).toThrow(
      SealError,
    );
    expect(() => openSecret(ring, sealed, "globex.sms.auth_token")).toThrow(SealError);
    expect(() => openSecret(sealingKeyring(keyText()), sealed, "acme.sms.auth_token")).toThrow(/neither/);
  });

  it("rotates: old keys open (stale), only the current one seals", () => {
    const oldText = keyText();
    const old = sealingKeyring(oldText);
    const sealed = sealSecret(old, "v", "c");
    const rotated = sealingKeyring(keyText(), ` ${oldText} ,`);
    expect(openSecret(rotated, sealed, "c")).toEqual({ value: "v", stale: true });
    expect(sealSecret(rotated, "v", "c").kid).toBe(rotated.current.id);
    expect(sealSecret(rotated, "v", "c").kid).not.toBe(sealed.kid);
  });
});

describe("keys", () => {
  it("take exactly 32 bytes of base64 and never echo the value", () => {
    const short = randomBytes(16).toString("base64");
    expect(() => parseSealingKey(short)).toThrow(SealingKeyError);
    expect(() => parseSealingKey(short)).not.toThrow(short);
    expect(() => parseSealingKey("not base64!")).toThrow(/base64/);
    expect(() => sealingKeyring(keyText(), `${keyText()},${short}`)).toThrow(/entry 2/);
    const key = randomBytes(32);
    expect(parseSealingKey(key.toString("base64")).id).toBe(sealingKeyId(key));
    expect(sealingKeyId(key)).toMatch(/^[0-9a-f]{16}$/);
    expect(new SealingKeyring(parseSealingKey(key.toString("base64"))).keyOf(sealingKeyId(key))).toEqual(key);
  });
});
