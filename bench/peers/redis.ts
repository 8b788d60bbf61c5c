import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type ManagedProcess, spawnProcess } from "@followup/nats-harness";
import { Redis } from "ioredis";

/**
 * A redis-server for a BullMQ peer, started by the bench on its own loopback port, in its own
 * temp dir, and stopped by its pid. Two kinds, each its own peer:
 *
 * - `none`: no persistence (`--save "" --appendonly no`): BullMQ at its fastest, nothing survives
 *   a crash.
 * - `fsync-always`: `--appendonly yes --appendfsync always --save ""`: every write is in the
 *   append-only file and fsync'd before Redis answers, the durability nats-server has at
 *   `sync_interval: always`. (Redis fsyncs once per event-loop turn, so the commands of one
 *   pipeline or MULTI share an fsync.)
 *
 * Debian's package is installed by bench/scripts/redis-server.sh when missing.
 */
export type RedisPersistence = "none" | "fsync-always";

export const REDIS_PERSISTENCE_ARGS: Record<RedisPersistence, string[]> = {
  none: ["--save", "", "--appendonly", "no"],
  "fsync-always": ["--save", "", "--appendonly", "yes", "--appendfsync", "always"],
};

export interface RedisPeer {
  readonly persistence: RedisPersistence;
  readonly port: number;
  /** Its temp dir (`--dir`): the append-only files of the fsync-always kind are in it. */
  readonly dir: string;
  readonly pid: number;
  readonly version: string;
  /** Drops every key, so each measurement starts from an empty Redis. */
  flush(): Promise<void>;
  /** `INFO <section>` as a map of its fields. */
  info(section: string): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

/** The script's answer, once per bench process: it installs, and checks the fsync-always mode. */
let resolvedBin: string | undefined;

export function resolveRedisServerBin(repoRoot: string): string {
  try {
    resolvedBin ??= execFileSync("bash", [join(repoRoot, "bench/scripts/redis-server.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      timeout: 300_000,
    }).trim();
    return resolvedBin;
  } catch {
    throw new Error(
      "BullMQ needs a redis-server and none could be installed (see the redis-server.sh messages above); " +
        "set REDIS_SERVER_BIN to a redis-server 6.2 or later, or leave BullMQ out with --only",
    );
  }
}

export async function startRedis(repoRoot: string, persistence: RedisPersistence): Promise<RedisPeer> {
  const bin = resolveRedisServerBin(repoRoot);
  const version = /v=(\S+)/.exec(execFileSync(bin, ["--version"], { encoding: "utf8" }))?.[1] ?? "unknown";
  const dir = mkdtempSync(join(tmpdir(), "bench-redis-"));
  const port = await freePort();
  const server: ManagedProcess = spawnProcess({
    name: `redis-server (bench, ${persistence})`,
    command: bin,
    args: [
      "--bind",
      "127.0.0.1",
      "--port",
      String(port),
      ...REDIS_PERSISTENCE_ARGS[persistence],
      "--dir",
      dir,
      "--protected-mode",
      "no",
      "--maxmemory-policy",
      "noeviction",
    ],
  });
  try {
    await server.waitForLine(/Ready to accept connections/, 15_000);
  } catch (err) {
    await server.cleanup();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const admin = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 3 });
  await admin.connect();
  if (persistence === "fsync-always") {
    // A redis-server that ignored the flags would make this peer a second no-persistence one.
    const [, appendonly] = (await admin.config("GET", "appendonly")) as string[];
    const [, appendfsync] = (await admin.config("GET", "appendfsync")) as string[];
    if (appendonly !== "yes" || appendfsync !== "always") {
      admin.disconnect();
      await server.cleanup();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(
        `redis-server ${version} runs with appendonly ${appendonly}, appendfsync ${appendfsync}; the fsync-always peer needs yes and always`,
      );
    }
  }
  return {
    persistence,
    port,
    dir,
    pid: server.pid,
    version,
    async flush() {
      await admin.flushall();
    },
    async info(section) {
      const text = await admin.info(section);
      const fields: Record<string, string> = {};
      for (const line of text.split("\r\n")) {
        const at = line.indexOf(":");
        if (at > 0 && !line.startsWith("#")) fields[line.slice(0, at)] = line.slice(at + 1);
      }
      return fields;
    },
    async stop() {
      admin.disconnect();
      server.kill("SIGTERM");
      try {
        await server.waitForExit(10_000);
      } finally {
        await server.cleanup();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
