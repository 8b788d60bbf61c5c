import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  authorizationConfig,
  IDENTITIES,
  type Identity,
  inboxPrefixOf,
  SERVICE_IDENTITIES,
  type ServiceIdentity,
  type Topology,
} from "@followup/contracts";

/**
 * The broker's users and each identity's credentials, written into one directory: `auth.conf`
 * (the nats-server `authorization` block, for `include auth.conf`) and `<identity>.env` (what
 * that identity's process reads: NATS_USER, NATS_PASSWORD, NATS_INBOX_PREFIX, and for a service
 * NATS_PROVISION=false). Every file is mode 0600, the directory 0700. Passwords already in the
 * env files are kept, so writing again does not lock out the processes that run.
 */

export const AUTH_CONFIG_FILE = "auth.conf";

export function envFileOf(identity: Identity): string {
  return `${identity}.env`;
}

/** The environment of a process running as `identity`. */
export function identityEnv(identity: Identity, password: string): Record<string, string> {
  return {
    NATS_USER: identity,
    NATS_PASSWORD: password,
    NATS_INBOX_PREFIX: inboxPrefixOf(identity),
    ...(SERVICE_IDENTITIES.includes(identity as ServiceIdentity) ? { NATS_PROVISION: "false" } : {}),
  };
}

function newPassword(): string {
  return randomBytes(24).toString("base64url");
}

function existingPassword(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const line = readFileSync(file, "utf8")
    .split("\n")
    .find((l) => l.startsWith("NATS_PASSWORD="));
  const value = line?.slice("NATS_PASSWORD=".length).trim();
  return value ? value : undefined;
}

/** Written beside, then renamed over: a reader never sees half a file, nor one readable by others. */
function writePrivate(file: string, text: string): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, file);
}

export function writeBrokerAuth(dir: string, topo: Topology): { files: string[] } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const users = IDENTITIES.map((identity) => ({
    identity,
    password: existingPassword(join(dir, envFileOf(identity))) ?? newPassword(),
  }));
  const files: string[] = [];
  for (const { identity, password } of users) {
    const env = identityEnv(identity, password);
    const file = join(dir, envFileOf(identity));
    writePrivate(
      file,
      `${Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join("\n")}\n`,
    );
    files.push(file);
  }
  const config = join(dir, AUTH_CONFIG_FILE);
  writePrivate(config, authorizationConfig(users, topo));
  files.push(config);
  return { files };
}
