import { mkdir, open, readdir, readFile, rename, rm, rmdir } from "node:fs/promises";

/**
 * The file operations the outbox is made of, each as durable as the outbox needs it: a file's
 * bytes are fsync'd before it is renamed into place, and a directory is fsync'd so that the
 * rename itself survives a power failure (POSIX makes no promise about either otherwise).
 */

/** Creates the directory (and its parents) readable by this user only: entries hold personal data. */
export async function ensureDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

export async function listDirectory(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

export async function readText(file: string): Promise<string> {
  return readFile(file, "utf8");
}

/** Writes the file (replacing one of that name) and fsyncs it before resolving. */
export async function writeFileDurably(file: string, text: string): Promise<void> {
  const handle = await open(file, "w", 0o600);
  try {
    await handle.writeFile(text, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function renameFile(from: string, to: string): Promise<void> {
  await rename(from, to);
}

export async function removeFile(file: string): Promise<void> {
  await rm(file, { force: true });
}

/** Removes the directory if it is empty; anything else (not empty, a mount point) leaves it be. */
export async function removeIfEmpty(dir: string): Promise<void> {
  await rmdir(dir).catch(() => {});
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Group commit of directory fsyncs: `sync()` resolves once an fsync of the directory that
 * started after the call has completed. Callers that arrive while one runs share the next one,
 * so a burst of N appends costs about two directory fsyncs, not N.
 */
export class DirectorySync {
  readonly #dir: string;
  #running: Promise<void> = Promise.resolve();
  #next: Promise<void> | undefined;

  constructor(dir: string) {
    this.#dir = dir;
  }

  sync(): Promise<void> {
    if (this.#next !== undefined) return this.#next;
    const next = this.#running
      .catch(() => {})
      .then(() => {
        // From here on a new caller's rename may come after this fsync began: it needs the next.
        this.#next = undefined;
        const run = syncDirectory(this.#dir);
        this.#running = run;
        return run;
      });
    this.#next = next;
    return next;
  }
}
