// Durable before acknowledged: the nats-server configurations the project ships make JetStream
// fsync before it acknowledges (`jetstream { sync_interval: always }`), so an acknowledged lead or
// timer is on disk (Jepsen, NATS 2.12.1: the default fsync every two minutes lost acknowledged
// writes on power failure). Checked on what `npm start` writes, by running a server with it, and
// on the compose cluster's config. Cost and trade-off: docs/reliability.md.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { topology } from "@followup/contracts";
import { freePort, resolveNatsServerBin, spawnProcess, waitFor } from "@followup/nats-harness";
import { writeBrokerAuth } from "@followup/service-kit";
import { afterEach, describe, expect, it } from "vitest";
import { natsConfig } from "../../scripts/engine.js";
import { clusterConfFrom, generateComposeSecrets } from "../compose/secrets.js";
import { REPO_ROOT } from "../support/index.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The body of the `jetstream { ... }` block of a nats-server config, comments removed. */
function jetstreamBlock(config: string): string {
  const text = config
    .split("\n")
    .map((line) => line.replace(/#.*$/, ""))
    .join("\n");
  const match = /jetstream\s*\{([^}]*)\}/.exec(text);
  if (!match) throw new Error("no jetstream block");
  return match[1] ?? "";
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

describe("sync_interval: always in the configurations the project ships", () => {
  it("the run command (scripts/engine.ts) writes it unless NATS_SYNC=default", () => {
    const dir = "/srv/engine/.data/nats";
    expect(jetstreamBlock(natsConfig({ port: 4222, dir, syncAlways: true }))).toMatch(
      /^\s*sync_interval:\s*always\s*$/m,
    );
    expect(jetstreamBlock(natsConfig({ port: 4222, dir, syncAlways: false }))).not.toMatch(/sync_interval/);
  });

  it("a nats-server started with what the run command writes fsyncs before every acknowledgement", async () => {
    let port = await freePort();
    for (let tries = 0; tries < 5 && !(await portIsFree(port + 4000)); tries++) port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "engine-nats-"));
    dirs.push(dir);
    const file = join(dir, "nats.conf");
    writeFileSync(file, natsConfig({ port, dir, syncAlways: true }));
    // What the run command writes beside it: the broker's users, which the config includes.
    writeBrokerAuth(dir, topology());
    const server = spawnProcess({
      name: "nats-server (engine config)",
      command: resolveNatsServerBin(),
      args: ["-c", file],
    });
    try {
      await server.waitForLine((line) => line.includes("Server is ready"), 20_000);
      const varz = await waitFor(
        async () =>
          (await fetch(`http://127.0.0.1:${port + 4000}/varz`)).json() as Promise<{
            jetstream: { config: { sync_always?: boolean; store_dir: string } };
          }>,
        { description: "the monitoring endpoint of the engine's nats-server" },
      );
      expect(varz.jetstream.config.sync_always).toBe(true);
      expect(varz.jetstream.config.store_dir).toBe(join(dir, "store", "jetstream"));
    } finally {
      await server.cleanup();
    }
  });

  it("the compose cluster (deploy/nats/cluster.conf) sets it, and nats-server accepts the file", () => {
    expect(jetstreamBlock(readFileSync(join(REPO_ROOT, "deploy/nats/cluster.conf"), "utf8"))).toMatch(
      /^\s*sync_interval:\s*always\s*$/m,
    );
    // With what scripts/compose-secrets.sh generates beside it (its users and TLS files).
    const file = clusterConfFrom(generateComposeSecrets());
    const verdict = spawnSync(resolveNatsServerBin(), ["-t", "-c", file], {
      env: { ...process.env, SERVER_NAME: "nats-1" },
      encoding: "utf8",
    });
    expect(verdict.status).toBe(0);
    expect(`${verdict.stdout}${verdict.stderr}`).toContain("is valid");
  });
});
