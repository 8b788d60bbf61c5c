import { describe, expect, it } from "vitest";
import { Slots } from "../src/slots.js";

describe("slots (a limit on work in flight)", () => {
  it("hands out at most `size`, then queues takers in arrival order", async () => {
    const slots = new Slots(2);
    const a = slots.tryAcquire()!;
    const b = await slots.acquire();
    expect(slots.free).toBe(0);
    expect(slots.tryAcquire()).toBeNull();
    const order: string[] = [];
    const taken = (name: string) => (release: () => void) => {
      order.push(name);
      return release;
    };
    const c = slots.acquire().then(taken("c"));
    const d = slots.acquire().then(taken("d"));
    // A waiter is ahead: tryAcquire must not jump the queue even once a slot frees.
    a();
    expect(slots.tryAcquire()).toBeNull();
    (await c)();
    b();
    (await d)();
    expect(order).toEqual(["c", "d"]);
    expect(slots.used).toBe(0);
  });

  it("ignores a second release of the same slot", () => {
    const slots = new Slots(1);
    const release = slots.tryAcquire()!;
    release();
    release();
    expect(slots.used).toBe(0);
    expect(slots.free).toBe(1);
  });

  it("tells when a slot is free and when all are", async () => {
    const slots = new Slots(2);
    const a = slots.tryAcquire()!;
    const b = slots.tryAcquire()!;
    let free = false;
    let idle = false;
    const freed = slots.whenFree().then(() => {
      free = true;
    });
    const idled = slots.whenIdle().then(() => {
      idle = true;
    });
    await Promise.resolve();
    expect([free, idle]).toEqual([false, false]);
    a();
    await freed;
    expect([free, idle]).toEqual([true, false]);
    b();
    await idled;
    expect(idle).toBe(true);
    await expect(new Slots(1).whenIdle()).resolves.toBeUndefined();
  });

  it("refuses a size that is not a positive integer", () => {
    expect(() => new Slots(0)).toThrow(/positive integer/);
    expect(() => new Slots(1.5)).toThrow(/positive integer/);
  });
});
