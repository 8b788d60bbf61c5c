import { topology } from "@followup/contracts";
import { freePort } from "@followup/nats-harness";
import { provisionTopology } from "@followup/service-kit";
import autocannon from "autocannon";
import { withBroker } from "../broker.js";
import { BENCH_API_KEY, startService } from "../engine/services.js";
import { startBareIntake } from "../peers/workers.js";
import type { NodeProcess } from "../processes.js";
import type { BenchContext, RunValues, SystemName, Workload } from "./workload.js";

/**
 * 4. Intake: `POST /v1/lead` with autocannon at a fixed number of connections, against
 * lead-intake on a real nats-server, and against a bare fastify route that only publishes the
 * body to JetStream. Each gets a short warm-up first (JIT, connection pools), not counted.
 */
export const CONNECTIONS = 32;

const LEAD = JSON.stringify({
  name: "Ada Lovelace",
  phone: "+44 20 7946 0958",
  email: "ada@example.com",
  details: "Interested in a demo next week. We need pricing for 20 seats, urgent, please call back today.",
});

function durations(ctx: BenchContext) {
  return ctx.smoke ? { warmupS: 0.3, measureS: 1 } : { warmupS: 3, measureS: 10 };
}

async function load(url: string, seconds: number): Promise<autocannon.Result> {
  return autocannon({
    url,
    method: "POST",
    connections: CONNECTIONS,
    pipelining: 1,
    duration: seconds,
    timeout: 10,
    headers: { "content-type": "application/json", "x-api-key": BENCH_API_KEY },
    body: LEAD,
  });
}

export async function measureIntake(
  ctx: BenchContext,
  system: SystemName,
  syncAlways: boolean,
): Promise<Record<string, number>> {
  const { warmupS, measureS } = durations(ctx);
  return withBroker(syncAlways, async ({ server, nc }) => {
    await provisionTopology(nc, topology());
    let target: NodeProcess;
    let url: string;
    if (system === "bare") {
      const port = await freePort();
      target = await startBareIntake(ctx.repoRoot, server.url, port);
      url = `http://127.0.0.1:${port}/v1/lead`;
    } else {
      const service = await startService(
        "lead-intake",
        ctx.engineRoot,
        // The per-key limit (600/min by default) would turn the load into 429s; its check still runs.
        { natsUrl: server.url, extra: { RATE_LIMIT_PER_MINUTE: "1000000" } },
        ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {},
      );
      target = service;
      url = `http://127.0.0.1:${service.port}/v1/lead`;
    }
    try {
      await load(url, warmupS);
      const result = await load(url, measureS);
      const failed = result.non2xx + result.errors + result.timeouts;
      if (failed > 0) {
        ctx.note(
          `${system} (${syncAlways ? "sync always" : "lazy sync"}): ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts of ${result.requests.total} requests`,
        );
      }
      const ok = result.requests.total - failed;
      return { rps: ok / result.duration, p99: result.latency.p99, p50: result.latency.p50, failed };
    } finally {
      await target.stop();
    }
  });
}

export const intake: Workload = {
  name: "intake",
  title: "4. Intake",
  systems: ["engine", "bare"],
  metrics: [
    { name: "rps", label: "requests/s (2xx)", unit: "1/s", better: "higher" },
    { name: "p50", label: "latency p50", unit: "ms", better: "lower" },
    { name: "p99", label: "latency p99", unit: "ms", better: "lower" },
    { name: "failed", label: "non-2xx + errors", unit: "count", better: "lower", across: "max" },
  ],
  describe: (ctx) =>
    `POST /v1/lead, ${CONNECTIONS} connections, ${durations(ctx).measureS} s after a ${durations(ctx).warmupS} s warm-up; nats-server sync_interval: always`,
  async run(ctx) {
    const values: RunValues = {};
    for (const system of this.systems) {
      values[system] = await measureIntake(ctx, system, true);
      const v = values[system]!;
      ctx.log(`  ${system}: ${Math.round(v.rps!)} req/s, p99 ${v.p99} ms`);
    }
    return values;
  },
};
