import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveNatsServerBin } from "./binary.js";
import { freePort } from "./port.js";
import { type ManagedProcess, spawnProcess } from "./process.js";
import { RUN_DIR_ENV, registerTempDir, removeTempDir } from "./reaper.js";

/** Options for {@link startNatsServer}. */
export interface NatsServerOptions {
  /** Enable JetStream, storing in the server's temp dir. Default true. */
  jetstream?: boolean;
  /** `jetstream { sync_interval: always }`: fsync before every acknowledgement. Default false. */
  syncAlways?: boolean;
  /** Appended verbatim to the generated config file (nats-server config syntax). */
  extraConfig?: string;
  /** The `server_name`. Default "harness". */
  name?: string;
}

/** A nats-server process on 127.0.0.1 that owns a temp dir holding its config and store. */
export interface NatsServer {
  readonly name: string;
  /** `nats://127.0.0.1:<port>`; stays the same across restarts. */
  readonly url: string;
  readonly port: number;
  /** The JetStream `store_dir` (the server keeps its data in `<storeDir>/jetstream`). */
  readonly storeDir: string;
  /** Pid of the running server process, or of the last one when stopped. */
  readonly pid: number;
  readonly running: boolean;
  /** Starts the server on the same port, config and store if it is stopped; no-op if it runs. */
  start(): Promise<void>;
  /** Stops the server if it runs (gracefully), then starts it on the same port and store. */
  restart(): Promise<void>;
  /** SIGTERM, waits for the exit; SIGKILL if it has not exited within 10 s. */
  stop(): Promise<void>;
  /** SIGKILL (a crash: no flush, no goodbye), waits for the exit. */
  kill(): Promise<void>;
  /** Stops the server and deletes its temp dir. Idempotent; the server cannot be started again. */
  cleanup(): Promise<void>;
  /** The tail of the server's log across all its runs, for error messages and debugging. */
  logs(): string;
}

interface NodeSpec {
  name: string;
  dir: string;
  port: number;
  config: string;
}

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
const START_ATTEMPTS = 5;

/**
 * Starts a nats-server on a free port of 127.0.0.1 with its own temp dir, and resolves once it
 * accepts clients. Retries on another port when the chosen one was taken meanwhile.
 *
 * @throws with the server's log tail when it exits early or is not ready within 20 s.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const { jetstream = true, syncAlways = false, extraConfig = "", name = "harness" } = options;
  for (let attempt = 1; ; attempt++) {
    const dir = makeServerDir();
    const port = await freePort();
    const storeDir = join(dir, "store");
    const config = [
      `server_name: ${JSON.stringify(name)}`,
      `listen: "127.0.0.1:${port}"`,
      jetstream ? jetstreamBlock(storeDir, syncAlways) : "",
      extraConfig,
    ].join("\n");
    const server = new LocalNatsServer({ name, dir, port, config });
    try {
      await server.start();
      return server;
    } catch (err) {
      await server.cleanup();
      if (!isPortClash(err) || attempt >= START_ATTEMPTS) throw err;
    }
  }
}

/** Creates the temp dir of one server: inside the run directory when there is one. */
export function makeServerDir(): string {
  const dir = mkdtempSync(join(process.env[RUN_DIR_ENV] || tmpdir(), "nats-"));
  registerTempDir(dir);
  return dir;
}

/** The `jetstream { ... }` block of a server config. */
export function jetstreamBlock(storeDir: string, syncAlways: boolean): string {
  return `jetstream {\n  store_dir: ${JSON.stringify(storeDir)}\n${syncAlways ? "  sync_interval: always\n" : ""}}`;
}

/** Whether a start failure was a port somebody else took between freePort() and the bind. */
export function isPortClash(err: unknown): boolean {
  return err instanceof Error && /address already in use/i.test(err.message);
}

/** A nats-server with a fixed port and config; startNatsServer and startNatsCluster build these. */
export class LocalNatsServer implements NatsServer {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly #dir: string;
  readonly #configFile: string;
  #process: ManagedProcess | undefined;
  #history: string[] = [];
  #cleanedUp = false;

  constructor(spec: NodeSpec) {
    this.name = spec.name;
    this.port = spec.port;
    this.url = `nats://127.0.0.1:${spec.port}`;
    this.#dir = spec.dir;
    this.storeDir = join(spec.dir, "store");
    this.#configFile = join(spec.dir, "nats-server.conf");
    writeFileSync(this.#configFile, `${spec.config}\n`);
  }

  get pid(): number {
    return this.#process?.pid ?? 0;
  }

  get running(): boolean {
    return this.#process?.running ?? false;
  }

  async start(): Promise<void> {
    if (this.#cleanedUp) throw new Error(`nats-server ${this.name} was cleaned up; it cannot start again`);
    if (this.running) return;
    this.#archiveOutput();
    const server = spawnProcess({
      name: `nats-server ${this.name}`,
      command: resolveNatsServerBin(),
      args: ["-c", this.#configFile],
    });
    this.#process = server;
    try {
      await server.waitForLine((line) => line.includes("Server is ready"), READY_TIMEOUT_MS);
    } catch (err) {
      await server.cleanup();
      throw new Error(
        `nats-server ${this.name} on 127.0.0.1:${this.port} did not become ready: ${(err as Error).message}`,
      );
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    const server = this.#process;
    if (!server?.running) return;
    server.kill("SIGTERM");
    try {
      await server.waitForExit(STOP_TIMEOUT_MS);
    } catch {
      server.kill("SIGKILL");
      await server.waitForExit(STOP_TIMEOUT_MS);
    }
  }

  async kill(): Promise<void> {
    const server = this.#process;
    if (!server?.running) return;
    server.kill("SIGKILL");
    await server.waitForExit(STOP_TIMEOUT_MS);
  }

  async cleanup(): Promise<void> {
    if (this.#cleanedUp) return;
    this.#cleanedUp = true;
    try {
      await this.stop();
    } finally {
      await this.#process?.cleanup();
      removeTempDir(this.#dir);
    }
  }

  logs(): string {
    return [...this.#history, ...(this.#process?.output() ?? [])].slice(-200).join("\n");
  }

  #archiveOutput(): void {
    if (this.#process === undefined) return;
    this.#history.push(...this.#process.output(), `[harness] pid ${this.#process.pid} ended; starting again`);
    this.#history = this.#history.slice(-1000);
  }
}
