// What scripts/compose-secrets.sh generates (never committed), made for a test in a temp dir, and
// deploy/nats/cluster.conf rewritten to read it there: so the compose files can be checked
// against real generated files and a real nats-server.

import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../support/index.js";

/** The directory compose reads the generated files from, as docker-compose.yml names it. */
export const SECRETS_DIR = "deploy/secrets";

/** Runs `bash scripts/compose-secrets.sh <temp dir>` and returns the dir. */
export function generateComposeSecrets(): string {
  const dir = mkdtempSync(join(process.env.FOLLOWUP_HARNESS_RUN_DIR || tmpdir(), "compose-secrets-"));
  execFileSync("bash", [join(REPO_ROOT, "scripts/compose-secrets.sh"), dir], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "ignore", "pipe"],
  });
  return dir;
}

/**
 * deploy/nats/cluster.conf in a temp dir laid out as a node's /etc/nats (auth.conf and tls/ from
 * `secrets`), its paths pointed there and, when given, its ports replaced (listen on 127.0.0.1).
 * Returns the config file's path.
 */
export function clusterConfFrom(
  secrets: string,
  ports?: { client: number; http: number; cluster: number },
): string {
  const dir = mkdtempSync(join(process.env.FOLLOWUP_HARNESS_RUN_DIR || tmpdir(), "cluster-conf-"));
  copyFileSync(join(secrets, "broker", "auth.conf"), join(dir, "auth.conf"));
  cpSync(join(secrets, "tls"), join(dir, "tls"), { recursive: true });
  let conf = readFileSync(join(REPO_ROOT, "deploy/nats/cluster.conf"), "utf8")
    .replaceAll("/etc/nats/", `${dir}/`)
    .replace('store_dir: "/data"', `store_dir: ${JSON.stringify(join(dir, "data"))}`);
  if (ports) {
    conf = conf
      .replace('listen: "0.0.0.0:4222"', `listen: "127.0.0.1:${ports.client}"`)
      .replace('http: "0.0.0.0:8222"', `http: "127.0.0.1:${ports.http}"`)
      .replace('listen: "0.0.0.0:6222"', `listen: "127.0.0.1:${ports.cluster}"`);
  }
  const file = join(dir, "cluster.conf");
  writeFileSync(file, conf);
  return file;
}
