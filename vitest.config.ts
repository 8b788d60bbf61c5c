import { defineConfig } from "vitest/config";

// One run over every package. Integration tests start their own nats-server through
// @followup/nats-harness, so files can run in parallel without sharing state.
export default defineConfig({
  test: {
    include: [
      "packages/*/test/**/*.test.ts",
      "services/*/test/**/*.test.ts",
      "test/**/*.test.ts",
      "bench/test/**/*.test.ts",
    ],
    exclude: ["**/node_modules/**"],
    globalSetup: ["test/harness/src/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
  },
});
