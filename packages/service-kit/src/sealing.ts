import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import type { SealedSecret } from "@followup/contracts";

/**
 * Secrets at rest (a tenant's provider credentials, a suppressed address): AES-256-GCM with a
 * random 12-byte IV per value, the record naming the key it was sealed with, so keys rotate:
 * the current key seals, the current and the old ones open. The context (what the value is and
 * whose: `<tenant>.<channel>.<field>`) is the additional authenticated data, so a sealed value
 * copied into another tenant's record, or another field, does not open. Opening fails closed:
 * an unknown key, a changed byte or another context throws SealError, never returns a value.
 */

export class SealError extends Error {}
/** A key variable that is not 32 bytes of base64; the message never repeats the value. */
export class SealingKeyError extends Error {}

const ALGORITHM = "aes-256-gcm";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

export interface SealingKey {
  /** A fingerprint of the key (not secret): what a sealed record names. */
  id: string;
  key: Buffer;
}

/** The id of a key: 16 hex digits of a domain-separated SHA-256 of it. */
export function sealingKeyId(key: Buffer): string {
  return createHash("sha256").update("followup-sealing-key-id\n").update(key).digest("hex").slice(0, 16);
}

/** Decodes a key written as base64 (`openssl rand -base64 32`); throws SealingKeyError naming the rule. */
export function parseSealingKey(text: string): SealingKey {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) {
    throw new SealingKeyError("expected 32 bytes in base64 (e.g. from `openssl rand -base64 32`)");
  }
  const key = Buffer.from(trimmed, "base64");
  if (key.length !== KEY_BYTES) {
    throw new SealingKeyError(`expected 32 bytes in base64, got ${key.length} bytes`);
  }
  return { id: sealingKeyId(key), key };
}

/** The key that seals, and the old keys that still open what was sealed before a rotation. */
export class SealingKeyring {
  readonly #byId = new Map<string, Buffer>();

  constructor(
    readonly current: SealingKey,
    old: readonly SealingKey[] = [],
  ) {
    for (const { id, key } of [current, ...old]) if (!this.#byId.has(id)) this.#byId.set(id, key);
  }

  keyOf(id: string): Buffer | undefined {
    return this.#byId.get(id);
  }
}

/**
 * The keyring of a current key and a comma-separated list of old ones (both base64); throws
 * SealingKeyError saying which entry of the list is wrong (by position, never by value).
 */
export function sealingKeyring(current: string, old = ""): SealingKeyring {
  const olds = old
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "")
    .map((part, index) => {
      try {
        return parseSealingKey(part);
      } catch (err) {
        throw new SealingKeyError(`entry ${index + 1}: ${(err as Error).message}`);
      }
    });
  return new SealingKeyring(parseSealingKey(current), olds);
}

/** Seals `plaintext` under the keyring's current key, bound to `context`. */
export function sealSecret(keyring: SealingKeyring, plaintext: string, context: string): SealedSecret {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, keyring.current.key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(context, "utf8"));
  const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return {
    v: 1,
    alg: "A256GCM",
    kid: keyring.current.id,
    iv: iv.toString("base64url"),
    data: data.toString("base64url"),
    tag: cipher.getAuthTag().toString("base64url"),
  };
}

export interface OpenedSecret {
  value: string;
  /** Sealed with an old key: the next write should seal it again under the current one. */
  stale: boolean;
}

/** Opens a sealed value bound to `context`; throws SealError when it does not open. */
export function openSecret(keyring: SealingKeyring, sealed: SealedSecret, context: string): OpenedSecret {
  const key = keyring.keyOf(sealed.kid);
  if (key === undefined) {
    throw new SealError(`sealed with key ${sealed.kid}, which is neither the current key nor an old one`);
  }
  const iv = Buffer.from(sealed.iv, "base64url");
  const tag = Buffer.from(sealed.tag, "base64url");
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new SealError("malformed sealed value");
  try {
    const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(context, "utf8"));
    decipher.setAuthTag(tag);
    const value = Buffer.concat([
      decipher.update(Buffer.from(sealed.data, "base64url")),
      decipher.final(),
    ]).toString("utf8");
    return { value, stale: sealed.kid !== keyring.current.id };
  } catch {
    throw new SealError("the sealed value does not authenticate (changed, or sealed for another record)");
  }
}
