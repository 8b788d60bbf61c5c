import { resolve } from "node:path";
import { type Topology, topology } from "@followup/contracts";
import { provisionTopology } from "@followup/service-kit";
import { type Broker, withBroker } from "../broker.js";
import { type FollowupHook, startFollowupHook } from "../hook.js";
import { startTogether } from "../processes.js";
import { type RunningService, startService } from "./services.js";

/** What a firing-path probe runs against: the engine's scheduler and dispatcher, and the hook. */
export interface ProbeEngine extends Broker {
  topo: Topology;
  hook: FollowupHook;
  scheduler: RunningService;
  /** The first dispatcher copy (of `dispatchers`). */
  dispatcher: RunningService;
  /** Every dispatcher copy, sharing one durable. */
  dispatchers: RunningService[];
}

/**
 * For the probes of the firing path (bench/probes): a fresh nats-server at sync always with the
 * topology, the bench's hook, and the scheduler and dispatcher of `engineRoot` (a checkout)
 * scheduling every lead `delayS` after it was created (`dispatchers` copies of the dispatcher,
 * 1 unless set); all stopped when `run` ends.
 */
export async function withProbeEngine<T>(
  options: {
    engineRoot: string;
    delayS: number;
    cpuProfileDir?: string;
    dispatchers?: number;
    /** Appended to nats-server's config. */
    serverConfig?: string;
  },
  run: (engine: ProbeEngine) => Promise<T>,
): Promise<T> {
  const hook = await startFollowupHook();
  try {
    return await withBroker(
      true,
      async (broker) => {
        const topo = topology();
        await provisionTopology(broker.nc, topo);
        const env = { natsUrl: broker.server.url, schedules: `${options.delayS}s`, hookUrl: hook.url };
        const profile = options.cpuProfileDir ? { cpuProfileDir: resolve(options.cpuProfileDir) } : {};
        const copies = Math.max(1, options.dispatchers ?? 1);
        const [scheduler, ...dispatchers] = await startTogether([
          startService("scheduler", options.engineRoot, env, profile),
          ...Array.from({ length: copies }, () =>
            startService("dispatcher", options.engineRoot, env, profile),
          ),
        ]);
        try {
          return await run({
            ...broker,
            topo,
            hook,
            scheduler: scheduler!,
            dispatcher: dispatchers[0]!,
            dispatchers,
          });
        } finally {
          // A profiled process writes its profile on a graceful exit.
          const graceMs = options.cpuProfileDir ? 10_000 : undefined;
          await Promise.all([scheduler!.stop(graceMs), ...dispatchers.map((d) => d.stop(graceMs))]);
        }
      },
      options.serverConfig,
    );
  } finally {
    await hook.close();
  }
}
