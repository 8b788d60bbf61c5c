// Creates or updates every stream, consumer and bucket of the topology, then exits: `pnpm provision`,
// run as the provision identity (NATS_USER=provision ..., see `pnpm broker-auth`) before the
// services start with NATS_PROVISION=false. Reads the services' NATS_* variables, NATS_REPLICAS
// and FOLLOWUP_QUEUE.
import { runProvision } from "../src/broker-auth.js";
import { runMain } from "../src/lifecycle.js";

runMain("provision", async () => {
  await runProvision(process.env);
});
