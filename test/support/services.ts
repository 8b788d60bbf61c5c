import {
  type ExitStatus,
  freePort,
  type LogLine,
  type ManagedProcess,
  parseLogLines,
  type ServiceName,
  spawnService,
  waitFor,
  waitForReadyz,
} from "@followup/nats-harness";
import { type MetricsSnapshot, scrapeMetrics } from "./metrics.js";

/** The log line each service prints once it has started (lead-intake's comes before NATS is up). */
const STARTED_LINE: Record<ServiceName, string> = {
  "lead-intake": "lead_intake_started",
  scheduler: "scheduler_started",
  dispatcher: "dispatcher_started",
  reports: "reports_started",
  console: "console_started",
};

/** How far {@link ServiceProcess.start} waits: its started line, or also a 200 from `/readyz`. */
export type StartedWhen = "logged" | "ready";

export interface ServiceProcessOptions {
  service: ServiceName;
  /** Shown in errors and logs: `scheduler#2`. Default: the service name. */
  label?: string;
  /** Added to this process's environment (`undefined` removes a variable). PORT and HOST are set here. */
  env: Record<string, string | undefined>;
  /** The HTTP port (kept across restarts). Default: a free port of 127.0.0.1. */
  port?: number;
  /** Default "ready". */
  startedWhen?: StartedWhen;
  /** How long a start may take. Default 45 s: tsx compiles on a busy 2-core machine. */
  startupTimeoutMs?: number;
}

/**
 * A service run as a real child process (`node --import tsx services/<name>/src/main.ts`, cwd the
 * repository root) on 127.0.0.1 and its own port, which it keeps across restarts. Its output is
 * kept across restarts too. Create with {@link startServiceProcess}.
 */
export class ServiceProcess {
  readonly service: ServiceName;
  readonly label: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>`: the API of lead-intake, `/metrics` and health of every service. */
  readonly url: string;
  readonly env: Record<string, string | undefined>;
  readonly #startedWhen: StartedWhen;
  readonly #startupTimeoutMs: number;
  #current: ManagedProcess | undefined;
  #earlierOutput: string[] = [];
  #starts = 0;

  constructor(options: ServiceProcessOptions & { port: number }) {
    this.service = options.service;
    this.label = options.label ?? options.service;
    this.port = options.port;
    this.url = `http://127.0.0.1:${options.port}`;
    // TEST_LOG_LEVEL=debug (with TEST_LOG_DIR) digs into a failed scenario.
    const logLevel = process.env.TEST_LOG_LEVEL ?? "info";
    this.env = { LOG_LEVEL: logLevel, ...options.env, PORT: String(options.port), HOST: "127.0.0.1" };
    this.#startedWhen = options.startedWhen ?? "ready";
    this.#startupTimeoutMs = options.startupTimeoutMs ?? 45_000;
  }

  /** The process of the current (or last) run. */
  get process(): ManagedProcess {
    if (!this.#current) throw new Error(`${this.label} was never started`);
    return this.#current;
  }

  get pid(): number {
    return this.#current?.pid ?? 0;
  }

  get running(): boolean {
    return this.#current?.running ?? false;
  }

  /**
   * Spawns the process and waits until it has logged its started line and, by default, until
   * `/readyz` answers 200. Throws with the output's tail when it exits or times out first.
   */
  async start(startedWhen: StartedWhen = this.#startedWhen): Promise<void> {
    if (this.running) throw new Error(`${this.label} is running already (pid ${this.pid})`);
    if (this.#current)
      this.#earlierOutput.push(...this.#current.output(), `[support] ${this.label} restarted`);
    this.#starts++;
    const proc = spawnService({
      service: this.service,
      name: this.#starts > 1 ? `${this.label} (run ${this.#starts})` : this.label,
      env: this.env,
    });
    this.#current = proc;
    const deadline = Date.now() + this.#startupTimeoutMs;
    await proc.waitForLine(
      (line) => line.includes(`"msg":"${STARTED_LINE[this.service]}"`),
      this.#startupTimeoutMs,
    );
    if (startedWhen === "ready") await this.waitUntilReady(Math.max(1_000, deadline - Date.now()));
  }

  /** Waits until `/readyz` answers 200 (NATS connected, topology provisioned, consumers running). */
  async waitUntilReady(timeoutMs = 20_000): Promise<void> {
    await waitForReadyz(this.url, {
      name: this.label,
      timeoutMs,
      alive: () => {
        if (!this.running) throw new Error(`${this.label} exited:\n${this.output().slice(-20).join("\n")}`);
      },
    });
  }

  /** SIGTERM (a graceful stop: drain, hand back, exit 0) and waits for the exit. */
  async sigterm(timeoutMs = 40_000): Promise<ExitStatus> {
    const proc = this.process;
    proc.kill("SIGTERM");
    return proc.waitForExit(timeoutMs);
  }

  /** SIGKILL (a crash: nothing is flushed, nothing handed back) and waits for the exit. */
  async kill(): Promise<ExitStatus> {
    const proc = this.process;
    proc.kill("SIGKILL");
    return proc.waitForExit(10_000);
  }

  /** A graceful stop when it runs, then a start on the same port with the same environment. */
  async restart(startedWhen: StartedWhen = this.#startedWhen): Promise<void> {
    if (this.running) await this.sigterm();
    await this.start(startedWhen);
  }

  /** Every line it printed, across restarts, stdout and stderr interleaved. */
  output(): string[] {
    return [...this.#earlierOutput, ...(this.#current?.output() ?? [])];
  }

  /** Its JSON log lines, across restarts (other lines, such as warnings on stderr, are skipped). */
  logs(): LogLine[] {
    return parseLogLines(this.output());
  }

  /** Its log lines whose `msg` is `msg`. */
  logsNamed(msg: string): LogLine[] {
    return this.logs().filter((line) => line.msg === msg);
  }

  /** Waits for a log line named `msg` that satisfies `match` (default: any); resolves with it. */
  waitForLog(
    msg: string,
    match: (line: LogLine) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<LogLine> {
    return waitFor(() => this.logsNamed(msg).find(match), {
      description: `${this.label} to log ${msg}`,
      timeoutMs,
    });
  }

  /** Its `/metrics`, parsed. */
  metrics(): Promise<MetricsSnapshot> {
    return scrapeMetrics(this.url);
  }

  /** SIGKILLs it if it runs and waits for the exit. Idempotent. */
  async cleanup(): Promise<void> {
    await this.#current?.cleanup();
  }
}

const START_ATTEMPTS = 3;

/**
 * Starts a service as a process on a free port (unless `port` is given) and waits for it (see
 * {@link ServiceProcess.start}). When the chosen port was taken meanwhile, tries another one.
 */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  for (let attempt = 1; ; attempt++) {
    const service = new ServiceProcess({ ...options, port: options.port ?? (await freePort()) });
    try {
      await service.start();
      return service;
    } catch (err) {
      await service.cleanup();
      const clash = service.output().some((line) => line.includes("EADDRINUSE"));
      if (!clash || options.port !== undefined || attempt >= START_ATTEMPTS) throw err;
    }
  }
}
