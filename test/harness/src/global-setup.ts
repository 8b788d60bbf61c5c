// vitest globalSetup (see the root vitest.config.ts): runs once, in the main vitest process.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveNatsServerBin } from "./binary.js";
import { isProcessAlive, RUN_DIR_ENV, reapRecorded } from "./reaper.js";

const base = join(tmpdir(), "followup-harness");
let runDir: string | undefined;

/**
 * Fails the run early when no nats-server is available, pins the binary for the workers through
 * NATS_SERVER_BIN, and creates the run directory (named in FOLLOWUP_HARNESS_RUN_DIR) where every
 * spawned child is recorded. Also sweeps run directories left by earlier runs that were killed.
 */
export function setup(): void {
  if (runDir !== undefined) return;
  process.env.NATS_SERVER_BIN = resolveNatsServerBin();
  mkdirSync(base, { recursive: true });
  sweepAbandonedRuns();
  runDir = mkdtempSync(join(base, `run-${process.pid}-`));
  process.env[RUN_DIR_ENV] = runDir;
  // Ctrl-C ends vitest without a teardown; the exit hook still runs.
  process.once("exit", teardown);
}

/** Kills any recorded child still running (its worker died without cleaning up), then removes the run directory. */
export function teardown(): void {
  if (runDir === undefined) return;
  const killed = sweep(runDir);
  if (killed.length > 0) {
    console.warn(
      `[nats-harness] killed ${killed.length} process(es) left running by the tests: ${killed.join(", ")}`,
    );
  }
  delete process.env[RUN_DIR_ENV];
  runDir = undefined;
}

function sweep(dir: string): number[] {
  const killed = reapRecorded(dir);
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  return killed;
}

/** Run directories whose vitest process (the pid in the name) is gone. */
function sweepAbandonedRuns(): void {
  for (const name of readdirSync(base)) {
    const owner = /^run-(\d+)-/.exec(name)?.[1];
    if (owner !== undefined && !isProcessAlive(Number(owner))) sweep(join(base, name));
  }
}
