import { ConfigError } from "@followup/service-kit";
import { describe, expect, it } from "vitest";
import { loadSchedulerConfig } from "../src/config.js";

function problems(env: Record<string, string>): string {
  try {
    loadSchedulerConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("scheduler configuration", () => {
  it("has the defaults of the system it replaces", () => {
    const config = loadSchedulerConfig({});
    expect(config).toMatchObject({
      FOLLOWUP_ENABLED: true,
      FOLLOWUP_RULE_TOP_P: 0.7,
      FOLLOWUP_SCHEDULES: [1800, 7200],
      FOLLOWUP_QUEUE: "followups",
      PORT: 8001,
      HOST: "0.0.0.0",
      NATS_REPLICAS: 1,
    });
  });

  it("parses the schedule at start-up, in order, with units", () => {
    expect(loadSchedulerConfig({ FOLLOWUP_SCHEDULES: "2s, 4s,1.5h,120" }).FOLLOWUP_SCHEDULES).toEqual([
      2, 4, 5400, 120,
    ]);
    expect(loadSchedulerConfig({ FOLLOWUP_SCHEDULES: "none" }).FOLLOWUP_SCHEDULES).toEqual([]);
  });

  it("schedules lead.scored in batches of 666 unless told otherwise; 1 to 1000, the atomic batch's limit", () => {
    // Three batches in flight fill the scored durable's max_ack_pending of 2000.
    expect(loadSchedulerConfig({}).SCHEDULER_BATCH_SIZE).toBe(666);
    expect(loadSchedulerConfig({ SCHEDULER_BATCH_SIZE: "1" }).SCHEDULER_BATCH_SIZE).toBe(1);
    expect(problems({ SCHEDULER_BATCH_SIZE: "1001" })).toMatch(
      /SCHEDULER_BATCH_SIZE: expected an integer from 1 to 1000/,
    );
    expect(problems({ SCHEDULER_BATCH_SIZE: "0" })).toMatch(/SCHEDULER_BATCH_SIZE/);
  });

  it("stops on a bad schedule part, naming FOLLOWUP_SCHEDULES and the part", () => {
    const message = problems({ FOLLOWUP_SCHEDULES: "30m,2x,1h" });
    expect(message).toContain("FOLLOWUP_SCHEDULES");
    expect(message).toContain('part 2 "2x"');
    expect(problems({ FOLLOWUP_SCHEDULES: "30m,,1h" })).toMatch(
      /FOLLOWUP_SCHEDULES: schedule part 2 "": empty/,
    );
    expect(problems({ FOLLOWUP_SCHEDULES: "0s" })).toMatch(/FOLLOWUP_SCHEDULES: .*greater than zero/);
  });

  it("names every other bad variable with what it expected", () => {
    const message = problems({
      FOLLOWUP_RULE_TOP_P: "1.5",
      FOLLOWUP_ENABLED: "maybe",
      FOLLOWUP_QUEUE: "follow ups",
      SCHEDULER_CONCURRENCY: "5000",
    });
    expect(message).toMatch(/FOLLOWUP_RULE_TOP_P: expected a number from 0 to 1/);
    expect(message).toMatch(/FOLLOWUP_ENABLED: expected true or false/);
    expect(message).toMatch(/FOLLOWUP_QUEUE: expected 1-32 characters/);
    expect(message).toMatch(/SCHEDULER_CONCURRENCY: expected an integer from 1 to 500/);
  });

  it("reads FOLLOWUP_ENABLED=false and a threshold", () => {
    const config = loadSchedulerConfig({ FOLLOWUP_ENABLED: "false", FOLLOWUP_RULE_TOP_P: "0.55" });
    expect(config.FOLLOWUP_ENABLED).toBe(false);
    expect(config.FOLLOWUP_RULE_TOP_P).toBe(0.55);
  });
});
