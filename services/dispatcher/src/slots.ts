/**
 * A counting limit on work in flight: the dispatcher's overall concurrency and each channel's.
 * Waiters are served in arrival order, so no follow-up starves behind later ones.
 */
export class Slots {
  #used = 0;
  readonly #waiters: (() => void)[] = [];
  readonly #watchers = new Set<() => void>();

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`slots: size must be a positive integer (got ${size})`);
  }

  get used(): number {
    return this.#used;
  }

  get free(): number {
    return this.size - this.#used;
  }

  /** Takes a slot now, or returns null when none is free. */
  tryAcquire(): (() => void) | null {
    if (this.#used >= this.size || this.#waiters.length > 0) return null;
    this.#used++;
    return this.#releaser();
  }

  /** Resolves with the release function once a slot is taken. */
  acquire(): Promise<() => void> {
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => {
      this.#waiters.push(() => {
        this.#used++;
        resolve(this.#releaser());
      });
    });
  }

  /** Resolves once at least `count` slots (at most all of them) are free: immediately if they are. */
  whenFree(count = 1): Promise<void> {
    const needed = Math.max(1, Math.min(count, this.size));
    return this.#when(() => this.free >= needed && this.#waiters.length === 0);
  }

  /** Resolves once no slot is taken. */
  whenIdle(): Promise<void> {
    return this.#when(() => this.#used === 0);
  }

  #when(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!condition()) return;
        this.#watchers.delete(check);
        resolve();
      };
      this.#watchers.add(check);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#used--;
      this.#waiters.shift()?.();
      for (const check of [...this.#watchers]) check();
    };
  }
}
