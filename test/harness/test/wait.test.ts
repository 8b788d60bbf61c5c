import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { freePort, waitFor } from "../src/index.js";

describe("waitFor", () => {
  it("resolves with the first truthy value, retrying falsy values and throws", async () => {
    let calls = 0;
    const value = await waitFor(
      () => {
        calls++;
        if (calls === 1) throw new Error("not yet");
        return calls >= 3 ? { calls } : undefined;
      },
      { description: "the third call", intervalMs: 1 },
    );
    expect(value).toEqual({ calls: 3 });
  });

  it("fails on the deadline with the description and the last error", async () => {
    await expect(
      waitFor(
        () => {
          throw new Error("still broken");
        },
        { description: "the impossible", timeoutMs: 100, intervalMs: 10 },
      ),
    ).rejects.toThrow(/Timed out after 100 ms .*waiting for the impossible; last error: still broken/);
  });

  it("abandons a probe that hangs past the deadline", async () => {
    const started = Date.now();
    await expect(
      waitFor(() => new Promise<boolean>(() => {}), { description: "a hung probe", timeoutMs: 100 }),
    ).rejects.toThrow(/a hung probe/);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe("freePort", () => {
  it("returns a loopback port that can be bound", async () => {
    const port = await freePort();
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", resolve);
    });
    await new Promise((resolve) => server.close(resolve));
  });
});
