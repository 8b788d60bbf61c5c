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

/** `redisVersion`: the version of the redis-server the run started, if it started one. */
export function describeMachine(redisVersion?: string): Machine {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    memoryBytes: totalmem(),
    os: `${type()} ${release()}`,
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
