import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, release, totalmem, type } from "node:os";
import { resolveNatsServerBin } from "@followup/nats-harness";

/** The machine and the versions a result was measured with, so a reader can reproduce it. */
export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  os: string;
  /** The engine's commit, with "+changes" when services/ or packages/ differ from it. */
  revision: string;
  versions: {
    node: string;
    natsServer: string;
    redis: string;
    bullmq: string;
    jetstream: string;
    autocannon: string;
  };
}

const require = createRequire(import.meta.url);

function packageVersion(name: string): string {
  try {
    const main = require.resolve(name);
    const root = main.slice(0, main.lastIndexOf(`/node_modules/${name}/`) + `/node_modules/${name}/`.length);
    return (JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

function commandVersion(command: string, pattern: RegExp): string {
  try {
    return pattern.exec(execFileSync(command, ["--version"], { encoding: "utf8" }))?.[1] ?? "unknown";
  } catch {
    return "not installed";
  }
}

function engineRevision(root: string): string {
  try {
    const git = (...args: string[]) =>
      execFileSync("git", ["-C", root, ...args], { encoding: "utf8" }).trim();
    const head = git("rev-parse", "--short", "HEAD");
    const changed = git("status", "--porcelain", "--", "services", "packages") !== "";
    return `${head}${changed ? "+changes" : ""}`;
  } catch {
    return "unknown (not a git checkout)";
  }
}

/**
 * `engineRoot`: the checkout whose services are measured; `redisVersion`: the version of the
 * redis-server the run started, if it started one.
 */
export function describeMachine(engineRoot: string, redisVersion?: string): Machine {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    memoryBytes: totalmem(),
    os: `${type()} ${release()}`,
    revision: engineRevision(engineRoot),
    versions: {
      node: process.versions.node,
      natsServer: commandVersion(resolveNatsServerBin(), /v(\d+\.\d+\.\d+)/),
      redis: redisVersion ?? "not used",
      bullmq: packageVersion("bullmq"),
      jetstream: packageVersion("@nats-io/jetstream"),
      autocannon: packageVersion("autocannon"),
    },
  };
}
