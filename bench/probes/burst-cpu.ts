/**
 * The engine's burst alone, for the CPU it costs: N single-step follow-ups due within one second
 * (the bench's burst, sync always, the shipped scheduler and dispatcher of `--engine-root`), with
 * the drain time and the CPU the dispatcher and nats-server spent per 1000 follow-ups from the
 * due second to the last delivery. No peers run, so it takes about a minute; alternate it between
 * two checkouts and read the CPU per 1000, which moves far less with the machine's load than the
 * drain does.
 *
 * `--dispatchers N` runs N dispatcher copies on the one durable (their CPU is summed): whether
 * the dispatcher's one thread is what the drain waits for.
 *
 * `--server-profile FILE` writes nats-server's own CPU profile (Go pprof, from its `prof_port`)
 * of the first SECONDS of the drain (`--server-profile-seconds`, default 8) to FILE; read it
 * with `npx tsx bench/probes/pprof-top.ts FILE`.
 *
 *   npx tsx bench/probes/burst-cpu.ts [count] [--engine-root DIR] [--profile DIR] [--dispatchers N]
 *     [--server-profile FILE [--server-profile-seconds S]]
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { freePort } from "@followup/nats-harness";
import { waitForStreamMessages } from "../broker.js";
import { seedScoredLeads } from "../engine/leads.js";
import { withProbeEngine } from "../engine/probe.js";
import { cpuPer1kDuring, cpuSplitMs } from "../processes.js";
import { dueAt, dueSecond } from "../workloads/burst.js";

const args = process.argv.slice(2);
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const count = Number(args.find((a) => /^\d+$/.test(a)) ?? 20_000);
const engineRoot = resolve(option("--engine-root") ?? ".");
const cpuProfileDir = option("--profile");
const dispatcherCopies = Number(option("--dispatchers") ?? 1);
if (!Number.isInteger(dispatcherCopies) || dispatcherCopies < 1)
  throw new Error("--dispatchers must be a whole number >= 1");
const serverProfileFile = option("--server-profile");
const serverProfileSeconds = Number(option("--server-profile-seconds") ?? 8);
if (!Number.isInteger(serverProfileSeconds) || serverProfileSeconds < 1 || serverProfileSeconds > 120)
  throw new Error("--server-profile-seconds must be a whole number of seconds, 1-120");
const profPort = serverProfileFile ? await freePort() : 0;
const DELAY_S = 60;

await withProbeEngine(
  {
    engineRoot,
    delayS: DELAY_S,
    dispatchers: dispatcherCopies,
    ...(cpuProfileDir ? { cpuProfileDir } : {}),
    ...(serverProfileFile ? { serverConfig: `prof_port: ${profPort}` } : {}),
  },
  async ({ server, js, jsm, topo, hook, dispatchers }) => {
    const dispatcherCpu = () =>
      dispatchers
        .map((d) => cpuSplitMs(d.pid))
        .reduce((a, b) => ({ user: a.user + b.user, system: a.system + b.system }));
    const start = dueSecond(20_000 + count);
    await seedScoredLeads(js, topo, {
      count,
      createdAt: (i) => new Date(dueAt(start, i, count) - DELAY_S * 1000),
    });
    await waitForStreamMessages(jsm, topo.streams.timers.name, count, Math.max(1, start - 1000 - Date.now()));
    if (Date.now() > start - 500) throw new Error("the timers were not all stored before the due second");
    await new Promise((r) => setTimeout(r, start - Date.now()));
    const cpu = await cpuPer1kDuring(
      count,
      { dispatcher: dispatcherCpu, nats: () => cpuSplitMs(server.pid) },
      async () => {
        const serverProfile = serverProfileFile
          ? fetch(`http://127.0.0.1:${profPort}/debug/pprof/profile?seconds=${serverProfileSeconds}`).then(
              async (res) => {
                if (!res.ok) throw new Error(`nats-server's profile: HTTP ${res.status}`);
                writeFileSync(serverProfileFile, Buffer.from(await res.arrayBuffer()));
              },
            )
          : Promise.resolve();
        await hook.waitForDeliveries(count, 300_000);
        await serverProfile;
      },
    );
    console.log(
      JSON.stringify({
        engineRoot,
        count,
        dispatchers: dispatcherCopies,
        drainS: (hook.lastArrivalMs - start) / 1000,
        dispatcherCpuPer1k: cpu.dispatcher.all,
        natsCpuPer1k: cpu.nats.all,
        // of which in the kernel (syscalls: socket writes and reads, fsyncs)
        dispatcherSystemPer1k: cpu.dispatcher.system,
        natsSystemPer1k: cpu.nats.system,
        duplicates: hook.duplicates,
      }),
    );
  },
);
