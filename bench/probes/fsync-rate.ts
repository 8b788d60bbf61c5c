/**
 * How many small write+fsync pairs a disk does per second for one writer: what nats-server at
 * `sync_interval: always` pays per stored message (one pwrite and one fsync, serially per
 * stream), with nothing else in the way. Appends `bytes`-sized records to a file in `dir` (the
 * bench passes a nats-server's store directory, so it is the same disk and file system) for
 * `seconds`, then deletes the file. Prints one line: `fsync-rate <fsyncs> in <ms> ms`.
 *
 *   npx tsx bench/probes/fsync-rate.ts <dir> [seconds=2] [bytes=256]
 *
 * (The bench runs it with FSYNC_PROBE_DIR and FSYNC_PROBE_SECONDS instead of arguments.)
 */
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

const [
  dir = process.env.FSYNC_PROBE_DIR,
  secondsArg = process.env.FSYNC_PROBE_SECONDS ?? "2",
  bytesArg = "256",
] = process.argv.slice(2);
const seconds = Number(secondsArg);
const bytes = Number(bytesArg);
if (!dir) throw new Error("dir: expected the directory to write in (e.g. a nats-server store)");
if (!(seconds > 0 && seconds <= 60)) throw new Error(`seconds: expected 0 to 60, got ${secondsArg}`);
if (!(Number.isInteger(bytes) && bytes > 0 && bytes <= 1 << 20))
  throw new Error(`bytes: expected an integer from 1 to 1048576, got ${bytesArg}`);

const file = join(dir, `fsync-probe-${process.pid}.dat`);
const record = Buffer.alloc(bytes, 0x61);
const fd = openSync(file, "a");
let fsyncs = 0;
const started = performance.now();
const until = started + seconds * 1000;
try {
  // Synchronous on purpose: the loop measures the disk, not the event loop or the thread pool.
  while (performance.now() < until) {
    writeSync(fd, record);
    fsyncSync(fd);
    fsyncs++;
  }
} finally {
  closeSync(fd);
  rmSync(file, { force: true });
}
console.log(`fsync-rate ${fsyncs} in ${(performance.now() - started).toFixed(1)} ms`);
