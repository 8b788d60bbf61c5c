import { readdirSync, readFileSync } from "node:fs";
import { waitFor } from "./wait.js";

/** The states of a process's threads (Linux /proc), e.g. ["T", "T"] once all are stopped. */
function threadStates(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    // The state follows the command name, which is in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  });
}

/**
 * SIGSTOP, then waits until every thread of the process is stopped: a thread in an
 * uninterruptible syscall (an fsync on a loaded disk) stops only when it returns, and a test that
 * asserts what a frozen server cannot do must not start before it is frozen.
 */
export async function freezeProcess(pid: number, timeoutMs = 5_000): Promise<void> {
  process.kill(pid, "SIGSTOP");
  if (process.platform !== "linux") return;
  await waitFor(() => threadStates(pid).every((state) => state === "T" || state === "t"), {
    description: `every thread of pid ${pid} stopped`,
    timeoutMs,
    intervalMs: 5,
  });
}
