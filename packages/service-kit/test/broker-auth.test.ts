import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IDENTITIES, topology } from "@followup/contracts";
import { afterEach, describe, expect, it } from "vitest";
import { AUTH_CONFIG_FILE, envFileOf, identityEnv, writeBrokerAuth } from "../src/index.js";

const dirs: string[] = [];
function newDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "broker-auth-"));
  dirs.push(dir);
  return join(dir, "auth");
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const mode = (file: string) => statSync(file).mode & 0o777;
const passwordIn = (file: string) => /^NATS_PASSWORD=(.+)$/m.exec(readFileSync(file, "utf8"))?.[1];

describe("writeBrokerAuth", () => {
  it("writes the users and one env file per identity, readable by the owner only", () => {
    const dir = newDir();
    const { files } = writeBrokerAuth(dir, topology());
    expect(files).toHaveLength(IDENTITIES.length + 1);
    expect(mode(dir)).toBe(0o700);
    for (const file of files) expect(mode(file), file).toBe(0o600);
    const config = readFileSync(join(dir, AUTH_CONFIG_FILE), "utf8");
    for (const identity of IDENTITIES) {
      const password = passwordIn(join(dir, envFileOf(identity)));
      expect(password?.length, identity).toBeGreaterThanOrEqual(32);
      expect(config).toContain(`password: ${JSON.stringify(password)}`);
    }
  });

  it("keeps the passwords already written, and tightens a file left readable by others", () => {
    const dir = newDir();
    writeBrokerAuth(dir, topology());
    const scheduler = join(dir, envFileOf("scheduler"));
    const before = passwordIn(scheduler);
    writeFileSync(scheduler, `NATS_PASSWORD=${before}\n`, { mode: 0o644 });
    writeBrokerAuth(dir, topology());
    expect(passwordIn(scheduler)).toBe(before);
    expect(mode(scheduler)).toBe(0o600);
    expect(readFileSync(scheduler, "utf8")).toContain("NATS_PROVISION=false");
  });

  it("sets NATS_PROVISION=false for services only, and each identity's inbox prefix", () => {
    expect(identityEnv("dispatcher", "p")).toEqual({
      NATS_USER: "dispatcher",
      NATS_PASSWORD: "p",
      NATS_INBOX_PREFIX: "_INBOX.dispatcher",
      NATS_PROVISION: "false",
    });
    expect(identityEnv("provision", "p")).not.toHaveProperty("NATS_PROVISION");
  });
});
