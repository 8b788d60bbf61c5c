/**
 * Runs the whole engine on this machine: a local nats-server with JetStream on a
 * project-local store and the broker's users (unless NATS_URL points elsewhere), the topology
 * provisioned as the `provision` identity, then lead-intake, scheduler, dispatcher and the console
 * as separate processes, each as its own identity, with prefixed logs. Ctrl-C stops them all cleanly.
 *
 *   npm start                                # everything, embedded nats-server
 *   FOLLOWUP_SCHEDULES=5s,10s npm start      # short delays, to watch follow-ups arrive
 *   NATS_URL=nats://host:4222 npm start      # the services only, against your NATS
 *
 * Run through scripts/start.sh (which installs what is missing), or `tsx scripts/engine.ts --help`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { dirname, isAbsolute, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { topology } from "../packages/contracts/src/index.js";
import {
  AUTH_CONFIG_FILE,
  type BrokerAuth,
  brokerAuth,
  envFileOf,
  runProvision,
} from "../packages/service-kit/src/broker-auth.js";
import { env as envVars, loadConfig } from "../packages/service-kit/src/config.js";
import { createLogger } from "../packages/service-kit/src/logger.js";
import { serviceCommand, waitForReadyz } from "../test/harness/src/services.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DATA = process.env.ENGINE_DATA_DIR ?? join(ROOT, ".data");

const HELP = `Usage: npm start  (or: pnpm start)

Starts nats-server (unless NATS_URL is set) with the broker's users (generated once into
<ENGINE_DATA_DIR>/broker/; no anonymous client), provisions the topology as the provision
identity, and starts the services of the engine (lead-intake, scheduler, dispatcher and the
console, the operator's pages), each as its own identity.
With NATS_URL set the services connect with the NATS_* credentials you give (if any).

Environment (all optional):
  NATS_URL              use this NATS instead of starting one (e.g. nats://127.0.0.1:4222)
  NATS_PORT             port of the embedded nats-server (default 4222; monitoring on NATS_PORT+4000)
  NATS_SYNC             "always" (default: fsync before every ack) or "default" (nats-server's lazy fsync)
  ENGINE_DATA_DIR       the embedded nats-server's store and the broker credentials (default .data/)
  API_KEYS              key:tenant pairs (default dev-key:demo, for this machine only)
  FOLLOWUP_SCHEDULES    delays of the follow-ups (default 30m,2h; try 5s,10s)
  FOLLOWUP_RULE_TOP_P   score a lead needs to get follow-ups (default 0.70)
  FOLLOWUP_HOOK_URL     where follow-ups are delivered (default lead-intake's /ops/followup-hook)
  FOLLOWUP_HOOK_SECRET  whsec_ secret for hook signatures (default: generated once into .data/)
  OUTBOX_DIR            lead-intake's durable outbox (default <ENGINE_DATA_DIR>/outbox/lead-intake-<port>)
  LOG_LEVEL             info (default), debug, ...
  HOST                  address the services listen on (default 127.0.0.1: the dev key stays on this machine)
  LEAD_INTAKE_PORT, SCHEDULER_PORT, DISPATCHER_PORT, REPORTS_PORT, CONSOLE_PORT
                        ports of the services (default 8000, 8001, 8002, 8003, 8004; /metrics, /healthz,
                        /readyz on each); the console's pages are on http://127.0.0.1:<CONSOLE_PORT>/console/
`;

const SERVICES = [
  { name: "lead-intake", port: Number(process.env.LEAD_INTAKE_PORT ?? 8000) },
  { name: "scheduler", port: Number(process.env.SCHEDULER_PORT ?? 8001) },
  { name: "dispatcher", port: Number(process.env.DISPATCHER_PORT ?? 8002) },
  { name: "reports", port: Number(process.env.REPORTS_PORT ?? 8003) },
  { name: "console", port: Number(process.env.CONSOLE_PORT ?? 8004) },
] as const;

const COLORS = ["\x1b[36m", "\x1b[35m", "\x1b[33m", "\x1b[32m"];
const RESET = "\x1b[0m";
const color = process.stdout.isTTY;

function say(message: string): void {
  process.stdout.write(`${color ? "\x1b[1m" : ""}[engine]${color ? RESET : ""} ${message}\n`);
}

function pipeWithPrefix(child: ChildProcess, name: string, index: number): void {
  const prefix = color ? `${COLORS[index % COLORS.length]}[${name}]${RESET} ` : `[${name}] `;
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) process.stdout.write(`${prefix}${line}\n`);
    });
  }
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = connect({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.destroy();
        resolve();
      });
      socket.once("error", () => {
        socket.destroy();
        if (Date.now() > deadline)
          reject(new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A hook secret generated once per data dir, so restarts keep verifying what is in flight. */
function hookSecret(): string {
  const file = join(DATA, "hook-secret");
  if (!existsSync(file)) {
    mkdirSync(DATA, { recursive: true });
    writeFileSync(file, `whsec_${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
  }
  return readFileSync(file, "utf8").trim();
}

/**
 * A runner killed outright (kill -9) leaves its nats-server running. The next start stops that
 * one, and only that one: the pid in our pid file whose command line names our config file.
 */
async function stopLeftoverNats(pidFile: string, configFile: string): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  let cmdline = "";
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !cmdline.includes(configFile)) return;
  say(`stopping the nats-server a previous run left behind (pid ${pid})`);
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && existsSync(`/proc/${pid}`)) await new Promise((r) => setTimeout(r, 100));
}

/**
 * The embedded nats-server's configuration. `syncAlways` (the default, NATS_SYNC=always) makes
 * JetStream fsync before it acknowledges, so an acknowledged lead or timer survives a power
 * failure (docs/reliability.md); exported so a test can check what is written.
 */
export function natsConfig(options: { port: number; dir: string; syncAlways: boolean }): string {
  const { port, dir, syncAlways } = options;
  // Plaintext: the server listens on loopback only (docs/operations.md, "Broker identities").
  // `include` is resolved relative to this file, which is written beside auth.conf.
  return `# written by scripts/engine.ts
server_name: "engine-local"
listen: "127.0.0.1:${port}"
http: "127.0.0.1:${port + 4000}"
pid_file: ${JSON.stringify(join(dir, "nats.pid"))}
jetstream {
  store_dir: ${JSON.stringify(join(dir, "store"))}
${syncAlways ? "  sync_interval: always\n" : ""}}
include ${AUTH_CONFIG_FILE}
`;
}

/**
 * The broker's users and credentials, generated once into <data dir>/broker/ (like the hook
 * secret: a restart keeps the passwords), for the queue the services use.
 */
function localBroker(): BrokerAuth {
  const { FOLLOWUP_QUEUE } = loadConfig({ FOLLOWUP_QUEUE: envVars.queue() });
  return brokerAuth(join(DATA, "broker"), topology({ queue: FOLLOWUP_QUEUE }));
}

async function startNats(broker: BrokerAuth): Promise<{ url: string; child: ChildProcess }> {
  const bin = process.env.NATS_SERVER_BIN;
  if (!bin) throw new Error("NATS_SERVER_BIN is not set: run through `npm start` (scripts/start.sh)");
  const port = Number(process.env.NATS_PORT ?? 4222);
  const dir = join(DATA, "nats");
  const configFile = join(broker.dir, "nats.conf");
  await stopLeftoverNats(join(dir, "nats.pid"), configFile);
  if (await portInUse(port)) {
    throw new Error(
      `port ${port} is taken: stop what listens there, set NATS_PORT to another port, or set NATS_URL to use that server`,
    );
  }
  mkdirSync(join(dir, "store"), { recursive: true });
  const sync = (process.env.NATS_SYNC ?? "always") === "always";
  writeFileSync(configFile, natsConfig({ port, dir, syncAlways: sync }), { mode: 0o600 });
  const child = spawn(bin, ["-c", configFile], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  pipeWithPrefix(child, "nats-server", 3);
  await waitForPort(port, 15_000);
  say(
    `nats-server listening on nats://127.0.0.1:${port} (pid ${child.pid}, store ${join(dir, "store")}, sync ${sync ? "always" : "default"})`,
  );
  return { url: `nats://127.0.0.1:${port}`, child };
}

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(HELP);
    return;
  }
  let nats: ChildProcess | undefined;
  let natsUrl = process.env.NATS_URL;
  let broker: BrokerAuth | undefined;
  if (!natsUrl) {
    broker = localBroker();
    const started = await startNats(broker);
    nats = started.child;
    natsUrl = started.url;
    await runProvision(
      { ...process.env, NATS_URL: natsUrl, ...broker.envOf("provision") },
      createLogger({ service: "provision", level: "warn" }),
    );
    say(`topology provisioned as provision; credentials in ${shown(broker.dir)}/ (mode 0600)`);
    say(
      `tail with: nats --server ${natsUrl} --user tail --password "$(sed -n 's/^NATS_PASSWORD=//p' ${shown(join(broker.dir, envFileOf("tail")))})" sub 'lead.>'`,
    );
  } else {
    say(
      `using NATS at ${natsUrl}: the services connect with the NATS_* credentials you set (NATS_USER, NATS_CREDS, ...) and provision the topology unless NATS_PROVISION=false`,
    );
  }

  const env = {
    ...process.env,
    NATS_URL: natsUrl,
    API_KEYS: process.env.API_KEYS ?? "dev-key:demo",
    FOLLOWUP_HOOK_SECRET: process.env.FOLLOWUP_HOOK_SECRET ?? hookSecret(),
    // lead-intake's own receiver, on the port it really listens on here.
    FOLLOWUP_HOOK_URL:
      process.env.FOLLOWUP_HOOK_URL ?? `http://127.0.0.1:${SERVICES[0].port}/ops/followup-hook`,
    // Loopback unless asked otherwise: the default API key is for this machine only.
    HOST: process.env.HOST ?? "127.0.0.1",
  };
  if (!process.env.API_KEYS)
    say("API_KEYS not set: using dev-key:demo (x-api-key: dev-key), for this machine only");

  const children = new Map<string, ChildProcess>();
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say("stopping services");
    const exits = [...children.values()].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
        }),
    );
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 30_000))]);
    if (nats && nats.exitCode === null) {
      say("stopping nats-server");
      const exited = new Promise((r) => nats?.once("exit", r));
      nats.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    process.exit(code);
  };

  SERVICES.forEach((service, index) => {
    const { command, args, cwd } = serviceCommand(service.name);
    const own =
      service.name === "lead-intake" && !process.env.OUTBOX_DIR
        ? { OUTBOX_DIR: join(DATA, "outbox", `lead-intake-${service.port}`) }
        : service.name === "console"
          ? consoleEnv(env.HOST)
          : {};
    const child = spawn(command, args, {
      cwd,
      // Each service as its own identity (NATS_USER, NATS_PASSWORD, NATS_INBOX_PREFIX,
      // NATS_PROVISION=false) on the embedded server.
      env: { ...env, ...broker?.envOf(service.name), ...own, PORT: String(service.port) },
      // Own process group: a Ctrl-C reaches only this runner, which stops the services in order
      // (each would otherwise get SIGINT from the terminal and SIGTERM from here, a "second
      // signal"). The IPC channel lets a service notice this runner's death and shut down.
      detached: true,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    children.set(service.name, child);
    pipeWithPrefix(child, service.name, index);
    say(`${service.name} started (pid ${child.pid})`);
    child.once("exit", (code, signal) => {
      if (stopping) return;
      say(`${service.name} exited (${signal ?? `code ${code}`}); stopping the engine`);
      void stopAll(1);
    });
  });
  nats?.once("exit", (code) => {
    if (stopping) return;
    say(`nats-server exited (code ${code}); stopping the engine`);
    void stopAll(1);
  });

  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => void stopAll(0));
  stopWhenOrphaned(() => {
    say("the process that started this runner is gone; stopping the engine");
    void stopAll(0);
  });

  // The ready line comes once every service answers 200 on /readyz, so a request right after it
  // is served (a started process needs 2-3 s more to listen and connect).
  const host = env.HOST === "0.0.0.0" || env.HOST === "::" ? "127.0.0.1" : env.HOST;
  for (;;) {
    const pending = await notReady(host, children, () => stopping);
    if (stopping) return;
    if (pending.length === 0) break;
    say(`waiting for ${pending.join(", ")} to answer 200 on /readyz`);
  }
  say(
    `ready: lead-intake on http://${host}:${SERVICES[0].port}, the console on http://${host}:${SERVICES[4].port}/console/ (sign in with ${process.env.API_KEYS ? "a key of API_KEYS" : "dev-key"}), scheduler metrics on :${SERVICES[1].port}, dispatcher metrics on :${SERVICES[2].port}, reports on http://${host}:${SERVICES[3].port}/v1/reports. Ctrl-C stops everything.`,
  );
}

/** The console calls this lead-intake and reports, and shows the lag the scheduler and dispatcher export. */
function consoleEnv(listenHost: string): Record<string, string> {
  const host = listenHost === "0.0.0.0" || listenHost === "::" ? "127.0.0.1" : listenHost;
  const [intake, scheduler, dispatcher, reports] = SERVICES;
  return {
    LEAD_INTAKE_URL: process.env.LEAD_INTAKE_URL ?? `http://${host}:${intake.port}`,
    REPORTS_URL: process.env.REPORTS_URL ?? `http://${host}:${reports.port}`,
    CONSOLE_METRICS_URLS:
      process.env.CONSOLE_METRICS_URLS ??
      `http://${host}:${scheduler.port}/metrics,http://${host}:${dispatcher.port}/metrics`,
  };
}

/** The services that did not answer 200 on /readyz within 30 s (all waited for at once). */
async function notReady(
  host: string,
  children: Map<string, ChildProcess>,
  stopping: () => boolean,
): Promise<string[]> {
  const results = await Promise.all(
    SERVICES.map((service) =>
      waitForReadyz(`http://${host}:${service.port}`, {
        name: service.name,
        timeoutMs: 30_000,
        alive: () => {
          const child = children.get(service.name);
          if (stopping() || !child || child.exitCode !== null || child.signalCode !== null)
            throw new Error(`${service.name} is not running`);
        },
      }).then(
        () => undefined,
        () => service.name,
      ),
    ),
  );
  return results.filter((name) => name !== undefined);
}

/** A path as a shell argument: relative to the working directory when under it. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  const text = rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : path;
  return /^[\w./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/**
 * `npm start` runs this runner as `sh -c "bash scripts/start.sh"` -> (exec) node: npm passes a
 * SIGTERM or SIGINT it gets on to that `sh`, which dies of it without passing it on, so the runner
 * gets no signal at all; it is only re-parented. Watching the parent pid turns that into a stop.
 */
function stopWhenOrphaned(stop: () => void): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    stop();
  }, 250);
  timer.unref();
}

// Run when executed (node --import tsx scripts/engine.ts), not when a test imports natsConfig.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`[engine] ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
