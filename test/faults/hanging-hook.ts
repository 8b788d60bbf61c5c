import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * An HTTP hop in front of the recording hook that can hang: while `hanging`, it takes each call
 * and never answers (the caller's timeout ends it); otherwise it forwards the call unchanged
 * (headers, signature and body) and relays the answer. It counts the calls open at once, exactly,
 * from the moment a request arrives until its answer is sent or its connection is gone.
 */
export class HangingHook {
  hanging = false;
  /** Calls held without an answer while hanging. */
  hung = 0;
  open = 0;
  maxOpen = 0;
  /** Where calls are forwarded (the recording hook's URL); set before the first call. */
  target = "";
  readonly #server: Server;
  #url = "";

  constructor() {
    this.#server = createServer((req, res) => {
      this.open++;
      this.maxOpen = Math.max(this.maxOpen, this.open);
      let closed = false;
      const done = () => {
        if (closed) return;
        closed = true;
        this.open--;
      };
      res.on("close", done);
      if (this.hanging) {
        this.hung++;
        req.resume();
        return;
      }
      const to = new URL(this.target);
      const upstream = request(
        { host: to.hostname, port: to.port, path: to.pathname, method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
    });
    this.#server.keepAliveTimeout = 60_000;
  }

  /** Where the dispatcher is pointed (FOLLOWUP_HOOK_URL). */
  get url(): string {
    return this.#url;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen({ host: "127.0.0.1", port: 0 }, resolve));
    this.#url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Starts a {@link HangingHook} on a free port of 127.0.0.1. */
export async function startHangingHook(): Promise<HangingHook> {
  const hook = new HangingHook();
  await hook.listen();
  return hook;
}
