// Creates or updates every stream, consumer and bucket of the topology, then exits: `pnpm provision`,
// run as the provision identity (NATS_USER=provision ..., see `pnpm broker-auth`) before the
// services start with NATS_PROVISION=false. Reads the services' NATS_* variables, NATS_REPLICAS
// and FOLLOWUP_QUEUE.
import { topology } from "@followup/contracts";
import { commonEnv, env, loadConfig } from "../src/config.js";
import { runMain } from "../src/lifecycle.js";
import { createLogger } from "../src/logger.js";
import { connectNats } from "../src/nats.js";
import { provisionTopology } from "../src/provision.js";

runMain("provision", async () => {
  const config = loadConfig({ ...commonEnv, FOLLOWUP_QUEUE: env.queue() });
  const logger = createLogger({ service: "provision", level: config.LOG_LEVEL });
  const nc = await connectNats({ settings: config, name: "provision", logger });
  const topo = topology({ replicas: config.NATS_REPLICAS, queue: config.FOLLOWUP_QUEUE });
  await provisionTopology(nc, topo, { logger, attempts: 10 });
  await nc.drain();
  logger.info({ queue: topo.queue, replicas: config.NATS_REPLICAS }, "topology_provisioned");
});
