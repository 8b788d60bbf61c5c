// `npm start` as an operator runs it: a real `npm start` process (its own nats-server on a temp
// data dir and free ports, NATS_URL unset), checked for what its ready line promises and for how
// it stops when SIGTERM or SIGINT is sent to the npm process itself (what a process manager or
// `timeout` does), and the install it runs for being quiet.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  freePort,
  isProcessAlive,
  type ManagedProcess,
  REPO_ROOT,
  SERVICE_NAMES,
  spawnProcess,
  waitFor,
} from "@followup/nats-harness";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { ApiClient, REFERENCE_LEADS } from "../support/index.js";

const READY_LINE =
  /\[engine\] ready: lead-intake on http:\/\/127\.0\.0\.1:\d+, the console on (http:\/\/127\.0\.0\.1:\d+\/console\/)/;

interface Started {
  /** What was started: `npm start`, or a wrapper around scripts/start.sh. */
  npm: ManagedProcess;
  dataDir: string;
  ports: Record<(typeof SERVICE_NAMES)[number], number>;
  /** nats-server and the services (by the pids the runner printed) and the runner itself. */
  pids: Map<string, number>;
}

const started: Started[] = [];

afterEach(async () => {
  // Kill only what this file started: the npm process group, then the pids the runner printed.
  for (const run of started.splice(0)) {
    await run.npm.cleanup();
    for (const pid of run.pids.values()) if (isProcessAlive(pid)) process.kill(pid, "SIGKILL");
    rmSync(run.dataDir, { recursive: true, force: true });
  }
});

/** A port p with p + 4000 free too: the embedded nats-server's monitoring port. */
async function natsPort(): Promise<number> {
  return waitFor(
    async () => {
      const port = await freePort();
      return port + 4000 < 65_536 && (await portIsFree(port + 4000)) ? port : 0;
    },
    { description: "a free port p with p + 4000 free too", timeoutMs: 5_000, intervalMs: 0 },
  );
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

const NPM_START = { command: "npm", args: ["start"] };

/** `npm start` (or `command`) on free ports and a temp data dir; resolves once the ready line is printed. */
async function npmStart(command: { command: string; args: string[] } = NPM_START): Promise<Started> {
  const dataDir = mkdtempSync(join(process.env.FOLLOWUP_HARNESS_RUN_DIR || tmpdir(), "npm-start-"));
  const ports = {
    "lead-intake": await freePort(),
    scheduler: await freePort(),
    dispatcher: await freePort(),
    reports: await freePort(),
    console: await freePort(),
  };
  const npm = spawnProcess({
    name: [command.command, ...command.args].join(" "),
    ...command,
    cwd: REPO_ROOT,
    env: {
      NATS_URL: undefined,
      NATS_PORT: String(await natsPort()),
      ENGINE_DATA_DIR: dataDir,
      LEAD_INTAKE_PORT: String(ports["lead-intake"]),
      SCHEDULER_PORT: String(ports.scheduler),
      DISPATCHER_PORT: String(ports.dispatcher),
      REPORTS_PORT: String(ports.reports),
      CONSOLE_PORT: String(ports.console),
      API_KEYS: undefined,
      FOLLOWUP_HOOK_SECRET: undefined,
      FOLLOWUP_HOOK_URL: undefined,
      OUTBOX_DIR: undefined,
      HOST: undefined,
      // The dependencies are installed (the run stands on them); the install is checked below.
      BOOTSTRAP_SKIP_INSTALL: "1",
    },
  });
  const run: Started = { npm, dataDir, ports, pids: new Map() };
  started.push(run);
  await npm.waitForLine(READY_LINE, 50_000);
  for (const line of npm.output()) {
    const match =
      /\[engine\] (nats-server|lead-intake|scheduler|dispatcher|reports|console) (?:listening on \S+ \(|started \()pid (\d+)/.exec(
        line,
      );
    if (match) run.pids.set(match[1]!, Number(match[2]));
  }
  expect([...run.pids.keys()].sort()).toEqual([
    "console",
    "dispatcher",
    "lead-intake",
    "nats-server",
    "reports",
    "scheduler",
  ]);
  run.pids.set("the runner (scripts/engine.ts)", parentOf(run.pids.get("lead-intake")!));
  return run;
}

/** The parent pid of `pid` (from /proc). */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

async function stopsEverything(signal: "SIGTERM" | "SIGINT", command = NPM_START): Promise<void> {
  const run = await npmStart(command);
  for (const [name, pid] of run.pids) expect(isProcessAlive(pid), `${name} (pid ${pid}) runs`).toBe(true);

  process.kill(run.npm.pid, signal);

  const stillRunning = () => [...run.pids].filter(([, pid]) => isProcessAlive(pid)).map(([name]) => name);
  await waitFor(() => stillRunning().length === 0, {
    description: `the runner, nats-server and the services to exit after ${signal} to ${command.command}`,
    timeoutMs: 30_000,
    intervalMs: 100,
  }).catch((err: Error) => {
    throw new Error(`${err.message}; still running: ${stillRunning().join(", ")}`);
  });
  // A clean stop, not a kill: the runner stopped the services, then nats-server.
  const output = run.npm.output().join("\n");
  expect(output).toContain("[engine] stopping services");
  expect(output).toContain("[engine] stopping nats-server");
  expect(output).toMatch(/"msg":"dispatcher_stopped"/);
}

describe("npm start", () => {
  it("prints its ready line only once every service answers /readyz and takes a lead", async () => {
    const run = await npmStart();
    // Right at the ready line, with no wait: every service is ready and the API takes a lead.
    const answers = await Promise.all(
      SERVICE_NAMES.map(async (name) => (await fetch(`http://127.0.0.1:${run.ports[name]}/readyz`)).status),
    );
    expect(answers).toEqual(SERVICE_NAMES.map(() => 200));
    // The console's address, as the ready line prints it, serves its page.
    const consoleUrl = READY_LINE.exec(run.npm.output().join("\n"))?.[1];
    expect(consoleUrl).toBe(`http://127.0.0.1:${run.ports.console}/console/`);
    const page = await fetch(consoleUrl!);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    // Its /v1/reports goes to the reports copy npm start runs (REPORTS_URL), with the caller's key.
    const steps = await fetch(`http://127.0.0.1:${run.ports.console}/v1/reports/steps`, {
      headers: { "x-api-key": "dev-key" },
    });
    expect(steps.status).toBe(200);
    expect(((await steps.json()) as { data: { steps: unknown[] } }).data.steps).toEqual(expect.any(Array));
    const accepted = await new ApiClient(`http://127.0.0.1:${run.ports["lead-intake"]}`, "dev-key").postLead(
      REFERENCE_LEADS.high,
    );
    expect(accepted.lead_id).toMatch(/\S/);
  }, 60_000);

  it("refuses anonymous clients; the tail identity of its tail line sees a lead's lead.scored and may not publish", async () => {
    const run = await npmStart();
    const output = run.npm.output().join("\n");
    const tail =
      /\[engine\] tail with: nats --server (\S+) --user tail --password "\$\(sed -n 's\/\^NATS_PASSWORD=\/\/p' (\S+)\)" sub 'lead\.>'/.exec(
        output,
      );
    expect(tail, output).not.toBeNull();
    const [, server = "", passwordFile = ""] = tail!;
    await expect(connect({ servers: server, maxReconnectAttempts: 0 })).rejects.toThrow(/authoriz/i);

    const password = /^NATS_PASSWORD=(.+)$/m.exec(
      readFileSync(resolve(REPO_ROOT, passwordFile), "utf8"),
    )?.[1];
    const nc = await connect({ servers: server, user: "tail", pass: password ?? "" });
    try {
      const errors: string[] = [];
      void (async () => {
        for await (const status of nc.status())
          if (status.type === "error") errors.push(String(status.error));
      })();
      const seen: string[] = [];
      const sub = nc.subscribe("lead.>", {
        callback: (_err, msg) => {
          seen.push(`${msg.subject} ${msg.string()}`);
        },
      });
      await nc.flush();
      const accepted = await new ApiClient(
        `http://127.0.0.1:${run.ports["lead-intake"]}`,
        "dev-key",
      ).postLead(REFERENCE_LEADS.high);
      await waitFor(() => seen.some((m) => m.startsWith("lead.scored.") && m.includes(accepted.lead_id)), {
        description: "the lead's lead.scored on tail's subscription",
      });
      nc.publish("lead.scored.demo.forged", "{}");
      await nc.flush();
      await waitFor(() => errors.some((e) => /permissions violation for publish/i.test(e)), {
        description: "the server to refuse tail's publish",
      });
      sub.unsubscribe();
    } finally {
      await nc.close();
    }
  }, 60_000);

  it("stops nats-server and every service when the npm process gets SIGTERM", async () => {
    await stopsEverything("SIGTERM");
  }, 60_000);

  it("stops nats-server and every service when the npm process gets SIGINT", async () => {
    await stopsEverything("SIGINT");
  }, 60_000);

  it("stops everything when the process that started the runner dies without passing a signal on", async () => {
    // sh dies of SIGTERM while it waits; the runner (its own session, so not killed with sh's
    // process group) gets no signal, only a new parent.
    await stopsEverything("SIGTERM", { command: "sh", args: ["-c", "setsid bash scripts/start.sh & wait"] });
  }, 60_000);
});

describe("the install", () => {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
    pnpm: { onlyBuiltDependencies?: string[]; ignoredBuiltDependencies?: string[] };
  };

  it("decides about every dependency with an install script: built, or ignored on purpose", () => {
    const decided = new Set([
      ...(manifest.pnpm.onlyBuiltDependencies ?? []),
      ...(manifest.pnpm.ignoredBuiltDependencies ?? []),
    ]);
    const store = join(REPO_ROOT, "node_modules", ".pnpm");
    const withScripts: string[] = [];
    for (const entry of readdirSync(store)) {
      const modules = join(store, entry, "node_modules");
      let names: string[];
      try {
        names = readdirSync(modules).flatMap((name) =>
          name.startsWith("@") ? readdirSync(join(modules, name)).map((n) => `${name}/${n}`) : [name],
        );
      } catch {
        continue;
      }
      for (const name of names) {
        // Only the package this store entry is for (its dependencies are links to their own entries).
        if (entry !== name.replace("/", "+") && !entry.startsWith(`${name.replace("/", "+")}@`)) continue;
        let scripts: Record<string, string> = {};
        try {
          scripts = JSON.parse(readFileSync(join(modules, name, "package.json"), "utf8")).scripts ?? {};
        } catch {
          continue;
        }
        if (scripts.preinstall || scripts.install || scripts.postinstall) withScripts.push(name);
      }
    }
    expect(withScripts.length).toBeGreaterThan(0);
    expect(withScripts.filter((name) => !decided.has(name))).toEqual([]);
  });

  it("prints no 'Ignored build scripts' box", () => {
    const pnpm = execFileSync("bash", ["-c", 'source scripts/bootstrap.sh && printf %s "$PNPM"'], {
      cwd: REPO_ROOT,
      env: { ...process.env, BOOTSTRAP_SKIP_INSTALL: "1", BOOTSTRAP_SKIP_NATS: "1" },
      encoding: "utf8",
    });
    const install = spawnSync(pnpm, ["install", "--frozen-lockfile", "--offline"], {
      cwd: REPO_ROOT,
      encoding: "utf8",
    });
    expect(install.status, install.stderr).toBe(0);
    expect(`${install.stdout}${install.stderr}`).not.toContain("Ignored build scripts");
  }, 30_000);
});
