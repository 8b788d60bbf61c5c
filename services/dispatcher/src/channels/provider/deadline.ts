/**
 * One call's deadline and the caller's abort, on a per-call controller: the call ends on
 * whichever comes first, without composing signals onto a long-lived shutdown signal (which
 * would keep every composite reachable from it). `end()` must run when the call is over.
 */
export class CallDeadline {
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;
  readonly #caller: AbortSignal | undefined;
  readonly #onAbort = () => this.#controller.abort(this.#caller?.reason);
  #timedOut = false;

  constructor(
    readonly timeoutMs: number,
    caller?: AbortSignal,
  ) {
    this.#caller = caller;
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      this.#controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError"));
    }, timeoutMs);
    if (caller?.aborted) this.#onAbort();
    caller?.addEventListener("abort", this.#onAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether the deadline (not the caller) ended the call. */
  get timedOut(): boolean {
    return this.#timedOut;
  }

  end(): void {
    clearTimeout(this.#timer);
    this.#caller?.removeEventListener("abort", this.#onAbort);
  }
}
