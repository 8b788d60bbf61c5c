import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { TEST_ADMIN } from "./admin.js";
import { freePort } from "./port.js";
import { isPortClash, jetstreamBlock, LocalNatsServer, makeServerDir, type NatsServer } from "./server.js";
import { waitFor } from "./wait.js";

/** Options for {@link startNatsCluster}. */
export interface NatsClusterOptions {
  /** Number of nodes. Default 3. */
  size?: number;
  /** `sync_interval: always` on every node. Default false. */
  syncAlways?: boolean;
  /** Appended verbatim to every node's config (an `authorization` block, say). */
  extraConfig?: string;
}

/** A JetStream cluster of nats-servers on 127.0.0.1. */
export interface NatsCluster {
  /** The nodes, each of which can be stopped, killed and restarted on its own. */
  readonly servers: NatsServer[];
  /**
   * Every node's client URL, comma-joined, as NATS_URL takes it. nats.js's `servers` option does
   * not split on commas: pass `urls.split(",")` there.
   */
  readonly urls: string;
  /** Cleans up every node. Idempotent. */
  cleanup(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;
const START_ATTEMPTS = 3;

/**
 * Starts a JetStream cluster (no domain) of `size` nodes on loopback: each node has its own client
 * port, cluster port, store and `server_name`, with routes to all the others. Resolves once every
 * node answers a JetStream API request, i.e. once a meta leader has been elected.
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const { size = 3, syncAlways = false, extraConfig = "" } = options;
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`startNatsCluster: size must be >= 1, got ${size}`);
  for (let attempt = 1; ; attempt++) {
    const clusterName = `harness-${randomBytes(3).toString("hex")}`;
    const ports = await Promise.all(Array.from({ length: size * 2 }, () => freePort()));
    const clientPorts = ports.slice(0, size);
    const routePorts = ports.slice(size);
    const servers = clientPorts.map((port, i) => {
      const dir = makeServerDir();
      const routes = routePorts.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`);
      const name = `${clusterName}-n${i + 1}`;
      const config = [
        `server_name: ${JSON.stringify(name)}`,
        `listen: "127.0.0.1:${port}"`,
        jetstreamBlock(join(dir, "store"), syncAlways),
        "cluster {",
        `  name: ${JSON.stringify(clusterName)}`,
        `  listen: "127.0.0.1:${routePorts[i]}"`,
        `  routes: ${JSON.stringify(routes)}`,
        "}",
        extraConfig,
      ].join("\n");
      return new LocalNatsServer({ name, dir, port, config });
    });
    const cluster: NatsCluster = {
      servers,
      urls: servers.map((s) => s.url).join(","),
      cleanup: async () => {
        await Promise.all(servers.map((s) => s.cleanup()));
      },
    };
    try {
      await Promise.all(servers.map((s) => s.start()));
      await Promise.all(servers.map((s) => untilJetStreamAnswers(s)));
      return cluster;
    } catch (err) {
      await cluster.cleanup();
      if (!isPortClash(err) || attempt >= START_ATTEMPTS) throw err;
    }
  }
}

async function untilJetStreamAnswers(server: NatsServer): Promise<void> {
  // As the tests' admin: the nodes may carry an authorization block (extraConfig).
  const nc = await connect({ servers: server.url, reconnect: false, ...TEST_ADMIN });
  try {
    const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 2_000 });
    await waitFor(() => jsm.getAccountInfo(), {
      description: `JetStream on cluster node ${server.name} to answer (meta leader elected)`,
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: 200,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\nlog of ${server.name}:\n${server.logs()}`);
    });
  } finally {
    await nc.close();
  }
}
