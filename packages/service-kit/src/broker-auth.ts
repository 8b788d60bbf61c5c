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
  topology,
  type UnrestrictedUser,
} from "@followup/contracts";
import type { Logger } from "pino";
import { commonEnv, type Env, env as envVars, loadConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { connectNats } from "./nats.js";
import { provisionTopology } from "./provision.js";

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

/** The environment `identity`'s env file in `dir` holds (`KEY=value` lines). */
export function readIdentityEnv(dir: string, identity: Identity): Record<string, string> {
  const text = readFileSync(join(dir, envFileOf(identity)), "utf8");
  return Object.fromEntries(
    text
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

/** A broker's users as written into one directory, and each identity's environment. */
export interface BrokerAuth {
  dir: string;
  /** `<dir>/auth.conf`: the nats-server `authorization` block. */
  configFile: string;
  /** The text of that block (to paste into a config elsewhere: `include` is relative to the includer). */
  authorization: string;
  /** The environment of a process running as `identity` (NATS_USER, NATS_PASSWORD, ...). */
  envOf(identity: Identity): Record<string, string>;
}

/**
 * The authorization of a nats-server the engine starts itself (`npm start`, the tests): writes
 * the users into `dir` (keeping the passwords already there) and reads each identity's environment
 * back. `unrestricted` is for a test harness's own admin user only.
 */
export function brokerAuth(
  dir: string,
  topo: Topology,
  options: { unrestricted?: readonly UnrestrictedUser[] } = {},
): BrokerAuth {
  writeBrokerAuth(dir, topo, options);
  const configFile = join(dir, AUTH_CONFIG_FILE);
  const envs = new Map(IDENTITIES.map((identity) => [identity, readIdentityEnv(dir, identity)]));
  return {
    dir,
    configFile,
    authorization: readFileSync(configFile, "utf8"),
    envOf: (identity) => ({ ...envs.get(identity) }),
  };
}

export function writeBrokerAuth(
  dir: string,
  topo: Topology,
  options: { unrestricted?: readonly UnrestrictedUser[] } = {},
): { files: string[] } {
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
  writePrivate(config, authorizationConfig(users, topo, options.unrestricted));
  files.push(config);
  return { files };
}

/**
 * `pnpm provision` as a function: connects with the NATS_* variables of `env` (the provision
 * identity's, normally), creates or updates the whole topology of FOLLOWUP_QUEUE with
 * NATS_REPLICAS, and closes. Used by the script, `npm start` and the tests' engine.
 */
export async function runProvision(env: Env, log?: Logger): Promise<Topology> {
  const config = loadConfig({ ...commonEnv, FOLLOWUP_QUEUE: envVars.queue() }, env);
  const logger = log ?? createLogger({ service: "provision", level: config.LOG_LEVEL });
  const nc = await connectNats({ settings: config, name: "provision", logger });
  try {
    const topo = topology({ replicas: config.NATS_REPLICAS, queue: config.FOLLOWUP_QUEUE });
    await provisionTopology(nc, topo, { logger, attempts: 10 });
    await nc.drain();
    logger.info({ queue: topo.queue, replicas: config.NATS_REPLICAS }, "topology_provisioned");
    return topo;
  } finally {
    if (!nc.isClosed()) await nc.close();
  }
}
