import { type NodeProcess, startNodeProcess } from "../processes.js";
import { BENCH_HOOK_SECRET } from "./hook-call.js";

/** The peers' workers as child processes, configured like the engine's dispatcher (32 hook calls in flight). */
export const HOOK_CONCURRENCY = 32;

export function startBullmqWorker(
  repoRoot: string,
  redisPort: number,
  hookUrl: string,
): Promise<NodeProcess> {
  return startNodeProcess({
    name: "bullmq-worker",
    repoRoot,
    script: "bench/peers/bullmq-worker.ts",
    env: {
      REDIS_PORT: String(redisPort),
      HOOK_URL: hookUrl,
      HOOK_SECRET: BENCH_HOOK_SECRET,
      HOOK_CONCURRENCY: String(HOOK_CONCURRENCY),
    },
    ready: { line: /bullmq-worker ready/ },
  });
}

export function startNativeConsumer(
  repoRoot: string,
  natsUrl: string,
  hookUrl: string,
): Promise<NodeProcess> {
  return startNodeProcess({
    name: "native-consumer",
    repoRoot,
    script: "bench/peers/native-consumer.ts",
    env: {
      NATS_URL: natsUrl,
      HOOK_URL: hookUrl,
      HOOK_SECRET: BENCH_HOOK_SECRET,
      HOOK_CONCURRENCY: String(HOOK_CONCURRENCY),
    },
    ready: { line: /native-consumer ready/ },
  });
}

export function startBareIntake(repoRoot: string, natsUrl: string, port: number): Promise<NodeProcess> {
  return startNodeProcess({
    name: "bare-intake",
    repoRoot,
    script: "bench/peers/bare-intake.ts",
    env: { NATS_URL: natsUrl, PORT: String(port) },
    ready: { url: `http://127.0.0.1:${port}/readyz` },
  });
}
