/**
 * The fsync'd writes nats-server does per fired follow-up, counted with strace: N leads (one step
 * each) scored and their timers stored; strace is attached to nats-server (sync_interval: always)
 * just before the due second and detached once every follow-up reached the hook and the consumers
 * are quiet; fsync + fdatasync calls / N. What is counted is the firing path only (the marker's
 * store, whatever the services write on firing, the acks), not the scheduling before it.
 *
 *   npx tsx bench/probes/firing-writes.ts 2000 [engine-root]   # needs strace (apt-get install strace)
 */
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { seedScoredLeads } from "../engine/leads.js";
import { withProbeEngine } from "../engine/probe.js";

const count = Number(process.argv[2] ?? 2000);
const engineRoot = resolve(process.argv[3] ?? ".");
const DELAY_S = 30;

async function main(): Promise<void> {
  await withProbeEngine({ engineRoot, delayS: DELAY_S }, async ({ server, js, jsm, topo, hook }) => {
    const due = Math.ceil((Date.now() + 8_000 + count) / 1000) * 1000;
    await seedScoredLeads(js, topo, {
      count,
      createdAt: (i) => new Date(due + Math.floor((i * 1000) / count) - DELAY_S * 1000),
    });
    for (;;) {
      if ((await jsm.streams.info(topo.streams.timers.name)).state.messages >= count) break;
      if (Date.now() > due - 1_500) throw new Error("the timers were not stored in time; try fewer");
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, due - 1_200 - Date.now())));
    const strace = spawn("strace", ["-f", "-c", "-e", "trace=fsync,fdatasync", "-p", String(server.pid)], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let report = "";
    strace.stderr.on("data", (chunk: Buffer) => {
      report += chunk.toString();
    });
    await hook.waitForDeliveries(count, 300_000);
    const drainS = (Date.now() - due) / 1000;
    // The acks and the last batches after the last call.
    await new Promise((r) => setTimeout(r, 2_000));
    strace.kill("SIGINT");
    await new Promise((r) => strace.once("exit", r));
    // strace -c: "% time  seconds  usecs/call  calls  [errors]  syscall"; the calls column.
    const calls = (name: string) =>
      Number(
        report
          .split("\n")
          .map((line) => line.trim().split(/\s+/))
          .find((cols) => cols.at(-1) === name)?.[3] ?? 0,
      );
    const fsyncs = calls("fsync") + calls("fdatasync");
    console.log(
      `${count} follow-ups fired (engine ${engineRoot}): ${fsyncs} fsync/fdatasync calls in nats-server, ` +
        `${(fsyncs / count).toFixed(2)} per follow-up; last delivery ${drainS.toFixed(1)} s after the due second`,
    );
    console.log(report.trim());
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
