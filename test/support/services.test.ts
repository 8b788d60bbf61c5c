// A service run as a process by the support code: ready on its own port, stopped with SIGTERM
// (exit 0), restarted on the same port with its earlier output kept, killed with SIGKILL.

import { type NatsServer, startNatsServer } from "@followup/nats-harness";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type ServiceProcess, startServiceProcess } from "./services.js";

let server: NatsServer;
let scheduler: ServiceProcess | undefined;

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  await scheduler?.cleanup();
  await server?.cleanup();
});

it("starts a service ready on its port, stops it gracefully, restarts it there, kills it", async () => {
  scheduler = await startServiceProcess({ service: "scheduler", env: { NATS_URL: server.url } });
  expect((await fetch(`${scheduler.url}/readyz`)).status).toBe(200);
  expect((await scheduler.metrics()).has("followups_scheduled_total")).toBe(true);
  expect(scheduler.logsNamed("scheduler_started")[0]).toMatchObject({ port: scheduler.port });
  const firstPid = scheduler.pid;

  expect(await scheduler.sigterm()).toEqual({ code: 0, signal: null });
  expect(scheduler.running).toBe(false);
  await scheduler.restart();
  expect(scheduler.pid).not.toBe(firstPid);
  expect((await fetch(`${scheduler.url}/readyz`)).status).toBe(200);
  expect(scheduler.logsNamed("scheduler_started")).toHaveLength(2);
  expect(scheduler.logsNamed("shutdown_complete")).toHaveLength(1);

  expect((await scheduler.kill()).signal).toBe("SIGKILL");
  await expect(fetch(`${scheduler.url}/healthz`)).rejects.toThrow();
}, 60_000);
