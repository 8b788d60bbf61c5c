// Docker cannot run here, so docker-compose.yml, the Dockerfile and deploy/ are checked against
// the code instead: every variable a service is given is one its config reads (and the whole
// environment passes its config loader), every command exists, every service has a health check
// on its own port, scaled services have no fixed names or host ports, Prometheus scrapes each
// service's PORT, the NATS cluster is 3 nodes of the nats minor the harness installs with R3
// streams and fsync always, TLS on client connections and routes and no anonymous client, every
// service runs as its own identity after the provision init service, and the image installs
// every workspace package. The files compose reads from deploy/secrets/ are generated for the test
// by the script that makes them (scripts/compose-secrets.sh), and a node is started from them.

import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { freePort, resolveNatsServerBin, spawnProcess } from "@followup/nats-harness";
import { ConfigError, commonEnv, type Env, env as envVars, loadConfig } from "@followup/service-kit";
import { connect } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { consoleEnv, loadConsoleConfig } from "../../services/console/src/config.js";
import { dispatcherEnv, loadDispatcherConfig } from "../../services/dispatcher/src/config.js";
import { leadIntakeEnv, loadLeadIntakeConfig } from "../../services/lead-intake/src/config.js";
import { loadReportsConfig, reportsEnv } from "../../services/reports/src/config.js";
import { loadSchedulerConfig, schedulerEnv } from "../../services/scheduler/src/config.js";
import { REPO_ROOT, SERVICE_NAMES, type ServiceName } from "../support/index.js";
import { clusterConfFrom, generateComposeSecrets, SECRETS_DIR } from "./secrets.js";

const read = (path: string) => readFileSync(join(REPO_ROOT, path), "utf8");

interface ComposeService {
  image?: string;
  build?: string | { context: string };
  command?: string[];
  container_name?: string;
  hostname?: string;
  ports?: unknown[];
  environment?: Record<string, string>;
  env_file?: string[];
  restart?: string;
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }> | string[];
  stop_grace_period?: string;
}

const compose = parse(read("docker-compose.yml"), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
};
const services = compose.services;

/** What each service's config reads (its zod shape) and how it loads it. */
const CONFIGS: Record<ServiceName, { shape: Record<string, unknown>; load: (env: Env) => unknown }> = {
  "lead-intake": { shape: leadIntakeEnv, load: loadLeadIntakeConfig },
  scheduler: { shape: schedulerEnv, load: loadSchedulerConfig },
  dispatcher: { shape: dispatcherEnv, load: loadDispatcherConfig },
  reports: { shape: reportsEnv, load: loadReportsConfig },
  console: { shape: consoleEnv, load: loadConsoleConfig },
};
const SCALED: ServiceName[] = ["scheduler", "dispatcher"];
const NATS_NODES = Object.keys(services).filter((name) => services[name]?.image?.startsWith("nats:"));

/** Compose's interpolation as it resolves without the variables set: `${X:-default}` is the default. */
function interpolate(value: unknown): string {
  return String(value).replace(
    /\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}/g,
    (_all, _name, fallback) => fallback ?? "",
  );
}

const secrets = generateComposeSecrets();
afterAll(() => rmSync(secrets, { recursive: true, force: true }));

/** A path of the compose file on this machine: deploy/secrets/ is the generated temp dir. */
function local(path: string): string {
  const relative = path.replace(/^\.\//, "");
  return relative.startsWith(`${SECRETS_DIR}/`)
    ? join(secrets, relative.slice(SECRETS_DIR.length + 1))
    : join(REPO_ROOT, relative);
}

/** `KEY=value` lines of an env file. */
function envFile(path: string): Env {
  return Object.fromEntries(
    readFileSync(local(path), "utf8")
      .split("\n")
      .filter((line) => line.includes("=") && !line.startsWith("#"))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

/** A service's environment as compose builds it: its env files, then `environment` over them. */
function environmentOf(name: string): Env {
  const files = (services[name]?.env_file ?? []).map(envFile);
  return Object.assign(
    {},
    ...files,
    Object.fromEntries(
      Object.entries(services[name]?.environment ?? {}).map(([k, v]) => [k, interpolate(v)]),
    ),
  );
}

function seconds(duration: string | undefined): number {
  const match = /^(\d+)(ms|s|m)$/.exec(duration ?? "");
  if (!match) return 0;
  const unit = { ms: 0.001, s: 1, m: 60 }[match[2] as "ms" | "s" | "m"];
  return Number(match[1]) * unit;
}

describe("docker-compose.yml against the services", () => {
  it.each(SERVICE_NAMES)("%s: is given only variables its config reads, and they load", (name) => {
    const env = environmentOf(name);
    const read = Object.keys(CONFIGS[name].shape);
    expect(Object.keys(env).filter((variable) => !read.includes(variable))).toEqual([]);
    try {
      CONFIGS[name].load(env);
    } catch (err) {
      throw new Error(
        `${name}'s compose environment does not load: ${err instanceof ConfigError ? err.message : String(err)}`,
      );
    }
    expect(env.NATS_REPLICAS).toBe("3");
    expect(env.NATS_URL?.split(",")).toEqual(NATS_NODES.map((node) => `nats://${node}:4222`));
  });

  it.each(SERVICE_NAMES)("%s: runs an entry file that exists, from the repository's image", (name) => {
    const service = services[name]!;
    const command = service.command ?? [];
    expect(command.slice(0, 3)).toEqual(["node", "--import", "tsx"]);
    expect(command[3]).toBe(`services/${name}/src/main.ts`);
    expect(existsSync(join(REPO_ROOT, command[3]!))).toBe(true);
    const context = typeof service.build === "string" ? service.build : service.build?.context;
    expect(context).toBe(".");
    expect(existsSync(join(REPO_ROOT, "Dockerfile"))).toBe(true);
    for (const node of NATS_NODES)
      expect(service.depends_on).toMatchObject({ [node]: { condition: "service_healthy" } });
    expect(service.depends_on).toMatchObject({ provision: { condition: "service_completed_successfully" } });
  });

  it.each(SERVICE_NAMES)(
    "%s: runs as its own identity, checking the topology only, and verifies the nodes with the CA",
    (name) => {
      const env = environmentOf(name);
      expect(services[name]?.env_file).toContain(`${SECRETS_DIR}/broker/${name}.env`);
      expect(env.NATS_USER).toBe(name);
      expect(env.NATS_PASSWORD).toMatch(/^\S{20,}$/);
      expect(env.NATS_INBOX_PREFIX).toBe(`_INBOX.${name}`);
      expect(env.NATS_PROVISION).toBe("false");
      expect(services[name]?.volumes).toContain(`./${SECRETS_DIR}/tls/ca.pem:${env.NATS_TLS_CA}:ro`);
    },
  );

  it.each(SERVICE_NAMES)("%s: has a health check on its own PORT", (name) => {
    const port = environmentOf(name).PORT;
    expect(port).toMatch(/^\d+$/);
    const check = (services[name]?.healthcheck?.test ?? []).join(" ");
    const urls = [...check.matchAll(/https?:\/\/[^'"\s]+/g)].map((m) => m[0]);
    expect(urls).toEqual([`http://127.0.0.1:${port}/readyz`]);
  });

  it("scales scheduler and dispatcher: no container_name, no host ports, time to stop gracefully", () => {
    for (const name of SCALED) {
      expect(services[name]?.container_name, name).toBeUndefined();
      expect(services[name]?.ports, name).toBeUndefined();
    }
    const dispatcher = loadDispatcherConfig(environmentOf("dispatcher"));
    const scheduler = loadSchedulerConfig(environmentOf("scheduler"));
    expect(seconds(services.dispatcher?.stop_grace_period)).toBeGreaterThan(
      dispatcher.DISPATCH_SHUTDOWN_GRACE_MS / 1000 + 5,
    );
    expect(seconds(services.scheduler?.stop_grace_period)).toBeGreaterThan(
      scheduler.SCHEDULER_SHUTDOWN_GRACE_MS / 1000 + 5,
    );
  });

  it("runs provision first, once, as the provision identity, with the services' NATS settings", () => {
    const provision = services.provision!;
    expect(provision.command).toEqual([
      "node",
      "--import",
      "tsx",
      "packages/service-kit/scripts/provision.ts",
    ]);
    expect(existsSync(join(REPO_ROOT, provision.command![3]!))).toBe(true);
    expect(provision.restart).toBe("no");
    expect(provision.image).toBe(services.scheduler?.image);
    for (const node of NATS_NODES)
      expect(provision.depends_on).toMatchObject({ [node]: { condition: "service_healthy" } });
    const env = environmentOf("provision");
    expect(provision.env_file).toEqual([`${SECRETS_DIR}/broker/provision.env`]);
    expect(env.NATS_USER).toBe("provision");
    const read = [...Object.keys(commonEnv), "FOLLOWUP_QUEUE"];
    expect(Object.keys(env).filter((variable) => !read.includes(variable))).toEqual([]);
    const config = loadConfig({ ...commonEnv, FOLLOWUP_QUEUE: envVars.queue() }, env);
    const scheduler = environmentOf("scheduler");
    for (const key of ["NATS_URL", "NATS_REPLICAS", "NATS_TLS_CA", "FOLLOWUP_QUEUE"] as const)
      expect(String(config[key]), key).toBe(scheduler[key]);
    expect(provision.volumes).toContain(`./${SECRETS_DIR}/tls/ca.pem:${env.NATS_TLS_CA}:ro`);
  });

  it("keeps every secret out of the repository: generated files, ignored by git and docker", () => {
    expect(read(".gitignore").split("\n")).toContain(`${SECRETS_DIR}/`);
    expect(read(".dockerignore").split("\n")).toContain(SECRETS_DIR);
    expect(read("docker-compose.yml")).not.toMatch(/whsec_|NATS_PASSWORD/);
  });

  it("shares one hook secret between the dispatchers and lead-intake's hook, which they call", () => {
    const intake = environmentOf("lead-intake");
    const dispatcher = environmentOf("dispatcher");
    expect(intake.FOLLOWUP_HOOK_SECRET).toMatch(/^whsec_/);
    expect(dispatcher.FOLLOWUP_HOOK_SECRET).toBe(intake.FOLLOWUP_HOOK_SECRET);
    expect(dispatcher.FOLLOWUP_HOOK_URL).toBe(`http://lead-intake:${intake.PORT}/ops/followup-hook`);
  });

  it("declares every named volume it mounts, and mounts only files that exist", () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const [source = ""] = volume.split(":");
        if (source.startsWith(".")) expect(existsSync(local(source)), `${name}: ${source}`).toBe(true);
        else expect(compose.volumes, `${name}: volume ${source}`).toHaveProperty(source);
      }
    }
  });
});

describe("the NATS cluster", () => {
  const conf = read("deploy/nats/cluster.conf");

  it("is three nodes of the official image, 2.11 or later, each named and health-checked", () => {
    expect(NATS_NODES).toEqual(["nats-1", "nats-2", "nats-3"]);
    for (const node of NATS_NODES) {
      const service = services[node]!;
      const [major = 0, minor = 0] = (/^nats:(\d+)\.(\d+)/.exec(service.image ?? "") ?? [])
        .slice(1)
        .map(Number);
      expect(major * 1000 + minor, `${node} image ${service.image}`).toBeGreaterThanOrEqual(2011);
      expect(service.environment?.SERVER_NAME).toBe(node);
      expect(service.hostname).toBe(node);
      expect(service.command).toEqual(["-c", "/etc/nats/cluster.conf"]);
      expect(service.volumes).toContain("./deploy/nats/cluster.conf:/etc/nats/cluster.conf:ro");
      // Beside cluster.conf: nats-server resolves its `include auth.conf` relative to it.
      expect(service.volumes).toContain(`./${SECRETS_DIR}/broker/auth.conf:/etc/nats/auth.conf:ro`);
      expect(service.volumes).toContain(`./${SECRETS_DIR}/tls:/etc/nats/tls:ro`);
      expect(service.healthcheck?.test.join(" ")).toContain("http://127.0.0.1:8222/healthz");
    }
  });

  it("runs the nats minor the test harness installs (scripts/nats-server.sh)", () => {
    const pinned = /^NATS_PINNED_MINOR=(\d+\.\d+)$/m.exec(read("scripts/nats-server.sh"))?.[1];
    expect(pinned).toMatch(/^\d+\.\d+$/);
    for (const node of NATS_NODES) expect(services[node]?.image, node).toBe(`nats:${pinned}-alpine`);
  });

  it("speaks TLS only, on client connections and on routes (mutual), and includes the users", () => {
    const block = (name: string, text: string) =>
      new RegExp(`${name} \\{([^}]*)\\}`, "s").exec(text)?.[1] ?? "";
    const clusterBlock = /cluster \{([\s\S]*)\n\}/.exec(conf)?.[1] ?? "";
    const clientTls = block("tls", conf.replace(clusterBlock, ""));
    const routeTls = block("tls", clusterBlock);
    for (const tls of [clientTls, routeTls]) {
      for (const key of ["cert_file", "key_file", "ca_file"]) {
        const file = new RegExp(`${key}: "([^"]+)"`).exec(tls)?.[1] ?? "";
        // Every file it names is in the tls/ directory the nodes mount from the generated secrets.
        expect(file, key).toMatch(/^\/etc\/nats\/tls\//);
        expect(existsSync(join(secrets, "tls", file.slice("/etc/nats/tls/".length))), file).toBe(true);
      }
    }
    expect(routeTls).toMatch(/verify: true/);
    expect(conf).toMatch(/^include auth\.conf$/m);
    expect(conf).not.toMatch(/no_auth_user/);
    expect(readFileSync(join(secrets, "broker", "auth.conf"), "utf8")).not.toMatch(/no_auth_user/);
  });

  it("a node started from it and the generated files: TLS verified with the CA, no anonymous client", async () => {
    const [client, http, cluster] = [await freePort(), await freePort(), await freePort()];
    const file = clusterConfFrom(secrets, { client, http, cluster });
    const node = spawnProcess({
      name: "nats-server (compose cluster.conf)",
      command: resolveNatsServerBin(),
      args: ["-c", file],
      env: { ...process.env, SERVER_NAME: "nats-1" },
    });
    try {
      await node.waitForLine((line) => line.includes("Listening for client connections"), 20_000);
      const url = `nats://127.0.0.1:${client}`;
      const tail = envFile(`${SECRETS_DIR}/broker/tail.env`);
      const ca = { caFile: join(secrets, "tls", "ca.pem") };
      const nc = await connect({ servers: url, user: "tail", pass: tail.NATS_PASSWORD!, tls: ca });
      expect(nc.info?.tls_required).toBe(true);
      await nc.close();
      await expect(connect({ servers: url, tls: ca, maxReconnectAttempts: 0 })).rejects.toThrow(/authoriz/i);
      // Without the CA the node's certificate is not trusted.
      await expect(
        connect({ servers: url, user: "tail", pass: tail.NATS_PASSWORD!, tls: {}, maxReconnectAttempts: 0 }),
      ).rejects.toThrow();
    } finally {
      await node.cleanup();
      rmSync(dirname(file), { recursive: true, force: true });
    }
  }, 30_000);

  it("routes between the three nodes and fsyncs before every acknowledgement", () => {
    expect(conf).toMatch(/^server_name: \$SERVER_NAME$/m);
    const routes = [...conf.matchAll(/"nats:\/\/([a-z0-9-]+):(\d+)"/g)].map((m) => `${m[1]}:${m[2]}`);
    expect(routes).toEqual(NATS_NODES.map((node) => `${node}:6222`));
    expect(conf).toMatch(/cluster \{[^}]*listen: "0\.0\.0\.0:6222"/s);
    expect(conf).toMatch(/jetstream \{[^}]*sync_interval: always/s);
    expect(conf).toMatch(/^listen: "0\.0\.0\.0:4222"$/m);
    expect(conf).toMatch(/^http: "0\.0\.0\.0:8222"$/m);
  });
});

describe("Prometheus", () => {
  const config = parse(read("deploy/prometheus/prometheus.yml")) as {
    scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; port: number }[] }[];
  };

  it.each(SERVICE_NAMES)("scrapes every copy of %s on its PORT", (name) => {
    const job = config.scrape_configs.find((j) => j.job_name === name);
    expect(job?.dns_sd_configs).toEqual([
      expect.objectContaining({ names: [name], port: Number(environmentOf(name).PORT) }),
    ]);
  });

  it("is mounted from deploy/prometheus", () => {
    expect(services.prometheus?.volumes).toContain(
      "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
    );
  });
});

describe("the Dockerfile", () => {
  const dockerfile = read("Dockerfile");
  const copies = [...dockerfile.matchAll(/^COPY\s+(.+)$/gm)].map((m) => m[1]!.trim().split(/\s+/));

  it("copies the manifest of every workspace package pnpm-workspace.yaml lists, before installing", () => {
    const globs = (parse(read("pnpm-workspace.yaml")) as { packages: string[] }).packages;
    const packages = globs.flatMap((glob) => {
      if (!glob.endsWith("/*")) return [glob];
      const parent = glob.slice(0, -2);
      return readdirSync(join(REPO_ROOT, parent)).map((dir) => `${parent}/${dir}`);
    });
    const manifests = packages.filter((dir) => existsSync(join(REPO_ROOT, dir, "package.json")));
    expect(manifests.length).toBeGreaterThanOrEqual(8);
    const installAt = dockerfile.indexOf("pnpm install");
    for (const dir of manifests) {
      const line = `COPY ${dir}/package.json ${dir}/`;
      expect(dockerfile, `${dir}/package.json`).toContain(line);
      expect(dockerfile.indexOf(line)).toBeLessThan(installAt);
    }
    expect(copies[0]).toEqual(["package.json", "pnpm-lock.yaml", "pnpm-workspace.yaml", "./"]);
  });

  it("installs with the lockfile and the pinned pnpm, dev dependencies included (tsx runs the services)", () => {
    const root = JSON.parse(read("package.json")) as {
      packageManager: string;
      devDependencies: Record<string, string>;
    };
    expect(dockerfile).toContain(`npm install -g ${root.packageManager}`);
    expect(root.devDependencies).toHaveProperty("tsx");
    const install = /^RUN pnpm install (.*)$/m.exec(dockerfile)?.[1] ?? "";
    expect(install).toContain("--frozen-lockfile");
    expect(install).not.toMatch(/--prod|-P\b/);
    expect(dockerfile.slice(0, dockerfile.indexOf("RUN pnpm install"))).not.toMatch(/NODE_ENV=production/);
  });

  it("copies the source the services run from and leaves lead-intake's outbox writable", () => {
    expect(copies).toContainEqual(["packages", "packages"]);
    expect(copies).toContainEqual(["services", "services"]);
    expect(dockerfile).toMatch(/chown node:node \.data/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(services["lead-intake"]?.volumes).toContain("lead-intake-data:/app/.data");
    const ignored = read(".dockerignore").split("\n");
    expect(ignored).toEqual(expect.arrayContaining(["**/node_modules", ".data", ".git"]));
  });
});
