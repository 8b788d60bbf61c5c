/**
 * What /readyz reports: named checks (NATS connected, streams provisioned, ...), each
 * with an optional reason. Ready when every check passes.
 */
export class Readiness {
  readonly #checks = new Map<string, { ok: boolean; detail?: string }>();

  set(name: string, ok: boolean, detail?: string): void {
    this.#checks.set(name, detail === undefined ? { ok } : { ok, detail });
  }

  isReady(): boolean {
    if (this.#checks.size === 0) return false;
    for (const check of this.#checks.values()) if (!check.ok) return false;
    return true;
  }

  report(): { ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> } {
    return { ready: this.isReady(), checks: Object.fromEntries(this.#checks) };
  }
}
