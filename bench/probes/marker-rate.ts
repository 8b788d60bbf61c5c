/**
 * How fast nats-server turns expiring timers into expiry markers: N timers (one per subject,
 * Nats-TTL, the engine's FOLLOWUP_TIMERS stream) all expiring in the same second, read back by
 * the scheduler's marker consumer that only acks. Prints when the markers arrive relative to
 * that second. This is the floor under the engine's burst lateness: nothing can fire a follow-up
 * before nats-server has stored its marker, and with `sync_interval: always` every marker is an
 * fsync'd write.
 *
 *   npx tsx bench/probes/marker-rate.ts [count] [--sync-always]
 */
import { topology } from "@followup/contracts";
import { startNatsServer } from "@followup/nats-harness";
import { provisionTopology } from "@followup/service-kit";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { cpuMs } from "../processes.js";
import { percentileOfSorted } from "../stats.js";
import { inWindow } from "../window.js";

const count = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 3000);
const syncAlways = process.argv.includes("--sync-always");
const server = await startNatsServer({ syncAlways, name: "marker-probe" });
const nc = await connect({ servers: server.url });
try {
  const topo = topology();
  await provisionTopology(nc, topo);
  const js = jetstream(nc, { timeout: 60_000 });
  // Far enough ahead that every timer is stored before the second starts.
  const second = Math.ceil((Date.now() + 5_000 + count / 2) / 1000) * 1000;
  await inWindow(count, 1000, (i) =>
    js.publish(`followup.timer.probe.L${i}.1`, "{}", {
      ttl: String(Math.floor((second - Date.now()) / 1000)),
      expect: { lastSubjectSequence: 0 },
    }),
  );
  if (Date.now() > second - 1000) throw new Error("storing the timers overran the expiry second; try fewer");
  const consumer = await js.consumers.get(topo.streams.timers.name, topo.consumers.dispatchMarkers.durable);
  const messages = await consumer.consume({ max_messages: 1000 });
  const arrivals: number[] = [];
  // The server's CPU from the expiry second on: the timers' own deliveries come before it.
  let cpuBefore = Number.NaN;
  setTimeout(() => (cpuBefore = cpuMs(server.pid)), Math.max(0, second - Date.now()));
  const deadline = setTimeout(() => void messages.close(), 120_000);
  for await (const msg of messages) {
    msg.ack();
    if (msg.headers?.get("Nats-Marker-Reason")) arrivals.push(Date.now() - second);
    if (arrivals.length === count) break;
  }
  clearTimeout(deadline);
  const serverCpuPer1k = Math.round(((cpuMs(server.pid) - cpuBefore) * 1000) / count);
  arrivals.sort((a, b) => a - b);
  console.log(
    `${count} timers, ${syncAlways ? "sync_interval: always" : "lazy fsync"}: markers arrived ` +
      `first ${arrivals[0]} ms, p50 ${percentileOfSorted(arrivals, 50)} ms, p99 ${percentileOfSorted(arrivals, 99)} ms, ` +
      `last ${arrivals.at(-1)} ms after the expiry second (${arrivals.length} of ${count}); nats-server CPU ${serverCpuPer1k} ms per 1000`,
  );
} finally {
  await nc.close();
  await server.cleanup();
}
