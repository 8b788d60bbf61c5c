// Writes the broker's users (auth.conf) and each identity's credentials (<identity>.env) into a
// directory, mode 0600: `pnpm broker-auth <dir>`. FOLLOWUP_QUEUE names the work queue, as for the
// services. Include the users from the server config with `include <dir>/auth.conf`.
import { topology } from "@followup/contracts";
import { writeBrokerAuth } from "../src/broker-auth.js";
import { ConfigError, env, loadConfig } from "../src/config.js";

const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: pnpm broker-auth <dir>\n");
  process.exit(64);
}
try {
  const { FOLLOWUP_QUEUE } = loadConfig({ FOLLOWUP_QUEUE: env.queue() });
  const { files } = writeBrokerAuth(dir, topology({ queue: FOLLOWUP_QUEUE }));
  process.stdout.write(`wrote ${files.length} files (mode 0600) to ${dir}\n`);
} catch (err) {
  process.stderr.write(`broker-auth: ${(err as Error).message}\n`);
  process.exit(err instanceof ConfigError ? 78 : 1);
}
