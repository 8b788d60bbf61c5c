import { hostname } from "node:os";
import { join } from "node:path";
import { readText, removeFile, renameFile, writeFileDurably } from "./files.js";

const LOCK_FILE = "outbox.lock";

/** Another live process on this host holds the outbox directory. */
export class OutboxLockedError extends Error {}

/**
 * One process per directory: a second lead-intake on the same host with the same OUTBOX_DIR
 * would publish the same leads and hand out clashing sequence numbers. The lock names a pid and
 * a host; a lock of a process that is gone (kill -9) is taken over. Across hosts liveness
 * cannot be checked: sharing one directory between hosts is not supported (docs/reliability.md).
 */
export async function takeOutboxLock(dir: string): Promise<void> {
  const file = join(dir, LOCK_FILE);
  const host = hostname();
  let holder: { pid?: unknown; host?: unknown } | undefined;
  try {
    holder = JSON.parse(await readText(file)) as { pid?: unknown; host?: unknown };
  } catch {
    holder = undefined;
  }
  if (
    holder !== undefined &&
    holder.host === host &&
    typeof holder.pid === "number" &&
    holder.pid !== process.pid &&
    isAlive(holder.pid)
  ) {
    throw new OutboxLockedError(
      `OUTBOX_DIR ${dir} is in use by process ${holder.pid} on this host; give each lead-intake copy its own OUTBOX_DIR`,
    );
  }
  await writeFileDurably(`${file}.tmp`, JSON.stringify({ pid: process.pid, host }));
  await renameFile(`${file}.tmp`, file);
}

export async function releaseOutboxLock(dir: string): Promise<void> {
  const file = join(dir, LOCK_FILE);
  try {
    const holder = JSON.parse(await readText(file)) as { pid?: unknown };
    if (holder.pid === process.pid) await removeFile(file);
  } catch {
    // no lock, or not ours: nothing to release
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
