import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { freePort, freezeProcess } from "../src/index.js";

describe("freePort", () => {
  it("never hands out the same port twice in one process", async () => {
    // One after another, each released before the next: without the check, 300 bare binds to
    // port 0 repeated 3 ports on the machine this was written on.
    const ports: number[] = [];
    for (let i = 0; i < 300; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(300);
  });
});

describe.runIf(process.platform === "linux")("freezeProcess", () => {
  it("resolves only once the process is stopped, and SIGCONT resumes it", async () => {
    const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    const pid = child.pid!;
    const state = () => {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      return stat[stat.lastIndexOf(")") + 2];
    };
    try {
      await freezeProcess(pid);
      expect(state()).toBe("T");
      process.kill(pid, "SIGCONT");
      expect(state()).not.toBe("T");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
