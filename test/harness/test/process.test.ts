import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { type ManagedProcess, spawnProcess, waitFor } from "../src/index.js";
import { isProcessAlive, processStartTime, RUN_DIR_ENV, reapRecorded } from "../src/reaper.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const parentScript = fileURLToPath(new URL("./fixtures/parent.ts", import.meta.url));

const started: ManagedProcess[] = [];
function track(p: ManagedProcess): ManagedProcess {
  started.push(p);
  return p;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.cleanup()));
});

/** Starts fixtures/parent.ts, which starts a `sleep` through the harness; resolves with both pids. */
async function startParent(
  env: Record<string, string> = {},
): Promise<{ parent: ManagedProcess; childPid: number }> {
  const parent = track(
    spawnProcess({
      name: "fixture parent",
      command: process.execPath,
      args: ["--import", "tsx", parentScript],
      cwd: repoRoot,
      env,
    }),
  );
  const line = await parent.waitForLine(/^child-pid=\d+$/, 15_000);
  return { parent, childPid: Number(line.split("=")[1]) };
}

describe("spawnProcess", () => {
  it("captures stdout and stderr lines and reports the exit code", async () => {
    const p = track(
      spawnProcess({
        name: "echo",
        command: "sh",
        args: ["-c", 'echo "out $GREETING"; echo err >&2; exit 3'],
        env: { GREETING: "hello" },
      }),
    );
    expect(await p.waitForLine(/^out /)).toBe("out hello");
    expect(await p.waitForExit()).toEqual({ code: 3, signal: null });
    expect(p.exitCode).toBe(3);
    expect(p.running).toBe(false);
    await waitFor(() => p.output().length === 2, { description: "both lines captured" });
    expect([...p.output()].sort()).toEqual(["err", "out hello"]);
  });

  it("holds the last 10 000 lines of a long output, and waitForLine sees only those", async () => {
    const p = track(spawnProcess({ name: "long", command: "seq", args: ["1", "25000"] }));
    await p.waitForExit();
    await waitFor(() => p.output().at(-1) === "25000", { description: "the last line captured" });
    const output = p.output();
    expect(output).toHaveLength(10_000);
    expect(output[0]).toBe("15001");
    expect(await p.waitForLine(/^15001$/)).toBe("15001");
    await expect(p.waitForLine(/^15000$/)).rejects.toThrow(/exited/);
  });

  it("rejects waitForLine when the process exits without printing the line", async () => {
    const p = track(spawnProcess({ name: "quiet", command: "sh", args: ["-c", "echo nothing here"] }));
    await expect(p.waitForLine(/ready/)).rejects.toThrow(/exited[\s\S]*nothing here/);
  });

  it("fails at once on a command that does not exist", () => {
    expect(() => spawnProcess({ name: "ghost", command: "/nonexistent/ghost" })).toThrow(/could not start/);
  });

  it("kill sends the signal; cleanup takes the whole process group", async () => {
    const p = track(spawnProcess({ name: "sleeper", command: "sleep", args: ["300"] }));
    p.kill("SIGTERM");
    expect(await p.waitForExit()).toEqual({ code: null, signal: "SIGTERM" });

    // A shell that started a grandchild: cleanup must not leave the grandchild behind.
    const sh = track(
      spawnProcess({ name: "sh", command: "sh", args: ["-c", "sleep 300 & echo grandchild=$!; wait"] }),
    );
    const grandchild = Number((await sh.waitForLine(/^grandchild=/)).split("=")[1]);
    await sh.cleanup();
    await waitFor(() => !isProcessAlive(grandchild), { description: `grandchild ${grandchild} to be gone` });
  });

  it("records each child in the run directory while it runs", async () => {
    const runDir = process.env[RUN_DIR_ENV];
    expect(runDir, "the global setup provides a run directory").toBeTruthy();
    const p = track(spawnProcess({ name: "recorded", command: "sleep", args: ["300"] }));
    expect(existsSync(join(runDir!, `${p.pid}.pid.json`))).toBe(true);
    await p.cleanup();
    expect(existsSync(join(runDir!, `${p.pid}.pid.json`))).toBe(false);
  });
});

describe("cleanup when the parent dies", () => {
  it("the watchdog kills the child when its parent is SIGKILLed", async () => {
    const { parent, childPid } = await startParent();
    expect(isProcessAlive(childPid)).toBe(true);
    parent.kill("SIGKILL");
    await parent.waitForExit();
    await waitFor(() => !isProcessAlive(childPid), {
      description: `the watchdog to kill orphaned child ${childPid}`,
      timeoutMs: 5_000,
    });
  });

  it("the signal handler kills the child when the parent gets SIGTERM", async () => {
    const { parent, childPid } = await startParent();
    parent.kill("SIGTERM");
    expect(await parent.waitForExit()).toEqual({ code: null, signal: "SIGTERM" });
    await waitFor(() => !isProcessAlive(childPid), {
      description: `child ${childPid} to be killed by the parent's SIGTERM handler`,
      timeoutMs: 1_000,
    });
  });
});

describe("reapRecorded (the global teardown's sweep)", () => {
  it("kills recorded children still running, and nothing it did not start", async () => {
    const runDir = mkdtempSync(join(tmpdir(), "harness-reap-test-"));
    // Not started by the harness: a record claiming its pid with another start time must not kill it.
    const stranger = spawn("sleep", ["300"], { detached: true, stdio: "ignore" });
    try {
      const { parent, childPid } = await startParent({ [RUN_DIR_ENV]: runDir });
      expect(readdirSync(runDir)).toEqual([`${childPid}.pid.json`]);
      writeFileSync(
        join(runDir, `${stranger.pid}.pid.json`),
        JSON.stringify({
          pid: stranger.pid,
          name: "stranger",
          parentPid: 1,
          startTime: "not-its-start-time",
        }),
      );
      expect(processStartTime(stranger.pid!)).toBeDefined();

      expect(reapRecorded(runDir)).toEqual([childPid]);
      await waitFor(() => !isProcessAlive(childPid), {
        description: `recorded child ${childPid} to be gone`,
      });
      expect(isProcessAlive(stranger.pid!), "a process the harness did not start was killed").toBe(true);
      expect(readdirSync(runDir)).toEqual([]);
      expect(parent.running).toBe(true);
    } finally {
      stranger.kill("SIGKILL");
      rmSync(runDir, { recursive: true, force: true });
    }
  });
});
