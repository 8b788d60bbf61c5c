import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Identity, inboxPrefixOf, topology } from "@followup/contracts";
import {
  freePort,
  type NatsServer,
  type NatsServerOptions,
  SERVICE_NAMES,
  type ServiceName,
  startNatsServer,
  TEST_ADMIN,
  TEST_ADMIN_USER,
} from "@followup/nats-harness";
import { type BrokerAuth, brokerAuth, createLogger, runProvision } from "@followup/service-kit";
import { ApiClient } from "./api.js";
import { newHookSecret } from "./fixtures.js";
import { type HookRecorder, startHookRecorder } from "./hook-recorder.js";
import { ServiceProcess, type StartedWhen } from "./services.js";

type Env = Record<string, string | undefined>;

/** The tenants the engine's lead-intake knows, with their API keys. */
export const TENANTS = {
  acme: { tenant: "acme", apiKey: "e2e-acme-key-4c1d" },
  globex: { tenant: "globex", apiKey: "e2e-globex-key-9a7e" },
  /** A tenant whose follow-ups come from its own sequences (the others keep the built-in rule). */
  initech: { tenant: "initech", apiKey: "e2e-initech-key-5b2f" },
} as const;

export interface EngineOptions {
  /** Copies of each service (0 leaves one out). Default 1 each, and no console. */
  copies?: Partial<Record<ServiceName, number>>;
  /** Where the dispatchers deliver: a recording hook (default), lead-intake's own hook, or a URL. */
  hook?: "recorder" | "lead-intake" | { url: string };
  /** FOLLOWUP_SCHEDULES of the schedulers. Default "2s,4s". */
  schedules?: string;
  /** Added to every service's environment. */
  env?: Env;
  /** Added to one service's environment (after `env`). */
  serviceEnv?: Partial<Record<ServiceName, Env>>;
  /**
   * Run against this NATS (one server or a cluster's URLs) instead of starting one. Give it
   * `broker` when that NATS has an authorization (see {@link testBrokerAuth}); without it the
   * services connect as the caller's `env`/`serviceEnv` say and provision the topology themselves.
   */
  natsUrl?: string;
  /** The authorization of `natsUrl`: then the engine runs as when it starts its own server. */
  broker?: BrokerAuth;
  /** Options of the nats-server started when `natsUrl` is not given. */
  nats?: NatsServerOptions;
  /** How far each service start waits. Default "ready". */
  startedWhen?: StartedWhen;
}

/** The whole engine as real processes around one NATS. Create with {@link startEngine}. */
export interface Engine {
  /** The nats-server this engine started (undefined when run against `natsUrl`). */
  readonly nats: NatsServer | undefined;
  readonly natsUrl: string;
  /** The broker's users and credentials (undefined when run against `natsUrl` without `broker`). */
  readonly broker: BrokerAuth | undefined;
  /**
   * nats.js connect options to connect as `identity` (user, pass, inbox prefix), or as the tests'
   * own admin (`TEST_ADMIN`, test-only) by default: for probes of consumer state and stored data.
   */
  as(identity?: Identity): { user: string; pass: string; inboxPrefix?: string };
  /** FOLLOWUP_HOOK_SECRET shared by the dispatchers and the hook receivers. */
  readonly secret: string;
  /** The recording hook, when the dispatchers deliver to it. */
  readonly hook: HookRecorder | undefined;
  /** Every copy of every service, by service. */
  readonly services: Record<ServiceName, ServiceProcess[]>;
  /** The first lead-intake. */
  readonly intake: ServiceProcess;
  /** lead-intake's API (the first copy) with tenant acme's key. */
  readonly api: ApiClient;
  /** Every service process. */
  all(): ServiceProcess[];
  /** Starts one more copy of a service with the engine's environment (plus `env`). */
  addCopy(service: ServiceName, env?: Env): Promise<ServiceProcess>;
  /** Kills every process, closes the hook, stops nats-server and removes temp dirs. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The broker users of a test server, in a temp dir: every identity of the topology plus the
 * tests' admin (TEST_ADMIN). Paste `authorization` into the server's config (`extraConfig`).
 */
export function testBrokerAuth(queue?: string): BrokerAuth {
  const dir = mkdtempSync(join(process.env.FOLLOWUP_HARNESS_RUN_DIR || tmpdir(), "broker-"));
  return brokerAuth(dir, topology(queue ? { queue } : {}), { unrestricted: [TEST_ADMIN_USER] });
}

/**
 * Starts a nats-server (JetStream, own temp dir and port) unless `natsUrl` is given, with the
 * broker's authorization as `npm start` writes it (every identity, plus the tests' admin), a
 * recording hook (by default), provisions the topology as the `provision` identity, then starts
 * lead-intake, scheduler, dispatcher and reports (and the console, when asked, with a reports
 * copy to call) as real processes (N copies each, all at once), each as
 * its own identity with NATS_PROVISION=false, on 127.0.0.1 and its own port. Resolves once every
 * one answers 200 on /readyz. Delays are short (2s,4s) and retries fast.
 *
 * Nothing outlives the test: the processes are registered with the harness's reaper, and
 * {@link Engine.stop} (call it in afterAll/afterEach) kills them.
 */
export async function startEngine(options: EngineOptions = {}): Promise<Engine> {
  const asked = { "lead-intake": 1, scheduler: 1, dispatcher: 1, reports: 1, console: 0, ...options.copies };
  // The console's Experiments page reads the reports service: one runs wherever a console does.
  const copies = { ...asked, reports: asked.console > 0 ? Math.max(1, asked.reports) : asked.reports };
  const secret = newHookSecret();
  const tempDirs: string[] = [];
  const services: Record<ServiceName, ServiceProcess[]> = {
    "lead-intake": [],
    scheduler: [],
    dispatcher: [],
    reports: [],
    console: [],
  };
  let nats: NatsServer | undefined;
  let hook: HookRecorder | undefined;

  const stop = async () => {
    await Promise.all(SERVICE_NAMES.flatMap((name) => services[name].map((s) => s.cleanup())));
    keepLogs(Object.values(services).flat());
    await hook?.close();
    await nats?.cleanup();
    for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  };

  const queue = options.env?.FOLLOWUP_QUEUE;
  const broker = options.broker ?? (options.natsUrl === undefined ? testBrokerAuth(queue) : undefined);
  if (broker && !options.broker) tempDirs.push(broker.dir);

  try {
    if (options.natsUrl === undefined) {
      const extraConfig = [broker!.authorization, options.nats?.extraConfig ?? ""].join("\n");
      nats = await startNatsServer({ ...options.nats, extraConfig });
    }
    const natsUrl = options.natsUrl ?? nats!.url;
    if (broker) {
      const { NATS_REPLICAS, LOG_LEVEL } = options.env ?? {};
      await runProvision(
        { NATS_URL: natsUrl, ...broker.envOf("provision"), NATS_REPLICAS, FOLLOWUP_QUEUE: queue },
        createLogger({ service: "provision", level: LOG_LEVEL ?? "warn" }),
      );
    }
    if ((options.hook ?? "recorder") === "recorder") hook = await startHookRecorder({ secret });

    // Ports first, so the dispatchers can be pointed at lead-intake's hook before it listens.
    const allPorts = await distinctFreePorts(
      copies["lead-intake"] + copies.scheduler + copies.dispatcher + copies.reports + copies.console,
    );
    const intakePorts = allPorts.splice(0, copies["lead-intake"]);
    const schedulerPorts = allPorts.splice(0, copies.scheduler);
    const reportsPorts = allPorts.splice(0, copies.reports);
    const dispatcherPorts = allPorts.splice(0, copies.dispatcher);
    const consolePorts = allPorts;
    const hookUrl =
      typeof options.hook === "object"
        ? options.hook.url
        : options.hook === "lead-intake"
          ? `http://127.0.0.1:${intakePorts[0]}/ops/followup-hook`
          : hook!.url;

    const apiKeys = Object.values(TENANTS)
      .map((t) => `${t.apiKey}:${t.tenant}`)
      .join(",");
    const envOf = (service: ServiceName): Env => {
      const own: Record<ServiceName, Env> = {
        "lead-intake": {
          API_KEYS: apiKeys,
          FOLLOWUP_HOOK_SECRET: secret,
          RATE_LIMIT_PER_MINUTE: "1000000",
          // One durable outbox per copy, never the repository's .data/.
          OUTBOX_DIR: newTempDir(tempDirs, "outbox-"),
        },
        scheduler: { FOLLOWUP_SCHEDULES: options.schedules ?? "2s,4s" },
        dispatcher: {
          FOLLOWUP_HOOK_URL: hookUrl,
          FOLLOWUP_HOOK_SECRET: secret,
          FOLLOWUP_RETRY_BASE_MS: "200",
          FOLLOWUP_RETRY_MAX_MS: "2000",
          DISPATCH_SHUTDOWN_GRACE_MS: "5000",
        },
        reports: { API_KEYS: apiKeys },
        // The first lead-intake and reports, and the lag of the first scheduler and dispatcher.
        console: {
          ...(intakePorts[0] ? { LEAD_INTAKE_URL: `http://127.0.0.1:${intakePorts[0]}` } : {}),
          ...(reportsPorts[0] ? { REPORTS_URL: `http://127.0.0.1:${reportsPorts[0]}` } : {}),
          CONSOLE_METRICS_URLS: [...schedulerPorts.slice(0, 1), ...dispatcherPorts.slice(0, 1)]
            .map((port) => `http://127.0.0.1:${port}/metrics`)
            .join(","),
        },
      };
      return {
        NATS_URL: natsUrl,
        ...broker?.envOf(service),
        ...own[service],
        ...options.env,
        ...options.serviceEnv?.[service],
      };
    };

    const create = async (service: ServiceName, port: number, env: Env = {}) => {
      const process = new ServiceProcess({
        service,
        label: `${service}#${services[service].length + 1}`,
        env: { ...envOf(service), ...env },
        port,
        ...(options.startedWhen ? { startedWhen: options.startedWhen } : {}),
      });
      services[service].push(process);
      await process.start();
      return process;
    };

    await Promise.all([
      ...intakePorts.map((port) => create("lead-intake", port)),
      ...schedulerPorts.map((port) => create("scheduler", port)),
      ...dispatcherPorts.map((port) => create("dispatcher", port)),
      ...reportsPorts.map((port) => create("reports", port)),
      ...consolePorts.map((port) => create("console", port)),
    ]);

    const intake = services["lead-intake"][0];
    return {
      nats,
      natsUrl,
      broker,
      as: (identity) => {
        if (identity === undefined) return { ...TEST_ADMIN };
        if (!broker) throw new Error(`this engine runs without broker identities: no ${identity}`);
        const env = broker.envOf(identity);
        return { user: env.NATS_USER!, pass: env.NATS_PASSWORD!, inboxPrefix: inboxPrefixOf(identity) };
      },
      secret,
      hook,
      services,
      get intake() {
        if (!intake) throw new Error("this engine runs no lead-intake");
        return intake;
      },
      get api() {
        if (!intake) throw new Error("this engine runs no lead-intake");
        return new ApiClient(intake.url, TENANTS.acme.apiKey);
      },
      all: () => SERVICE_NAMES.flatMap((name) => services[name]),
      addCopy: async (service, env) => create(service, await freePort(), env),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * With TEST_LOG_DIR set, every service's output (all its runs) is written there when the engine
 * stops, one file per copy (`<label>-<pid>.log`): for digging into a failed scenario.
 */
function keepLogs(processes: ServiceProcess[]): void {
  const dir = process.env.TEST_LOG_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  for (const service of processes) {
    const name = `${service.label.replace(/[^A-Za-z0-9_-]/g, "_")}-${service.pid}.log`;
    writeFileSync(join(dir, name), `${service.output().join("\n")}\n`);
  }
}

/** `count` ports of 127.0.0.1 that were free a moment ago, no two alike. */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let tries = 0; ports.size < count && tries < count * 10; tries++) ports.add(await freePort());
  return [...ports];
}

function newTempDir(registry: string[], prefix: string): string {
  const dir = mkdtempSync(join(process.env.FOLLOWUP_HARNESS_RUN_DIR || tmpdir(), prefix));
  registry.push(dir);
  return dir;
}
