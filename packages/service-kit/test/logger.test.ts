import { Writable } from "node:stream";
import { describe, expect, it, vi } from "vitest";
import {
  createLogger,
  flatLineLogger,
  holdLinesForTurn,
  logTogether,
  maskEmail,
  maskPhone,
} from "../src/index.js";
import { linesTogether } from "../src/logger.js";

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, destination };
}

describe("logger", () => {
  it("writes JSON lines with the service name and a level label", () => {
    const { lines, destination } = capture();
    createLogger({ service: "scheduler", destination }).info({ lead_id: "L1" }, "followups_enqueued");
    const line = JSON.parse(lines[0] ?? "{}");
    expect(line).toMatchObject({
      service: "scheduler",
      level: "info",
      msg: "followups_enqueued",
      lead_id: "L1",
    });
    expect(typeof line.time).toBe("string");
  });

  it("stamps each line with the time of its millisecond, as an ISO 8601 string", () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: "scheduler", destination });
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(new Date("2026-12-01T10:00:00.123Z"));
      logger.info("a");
      logger.info("b");
      vi.setSystemTime(new Date("2026-12-01T10:00:00.124Z"));
      logger.info("c");
    } finally {
      vi.useRealTimers();
    }
    expect(lines.map((l) => JSON.parse(l).time)).toEqual([
      "2026-12-01T10:00:00.123Z",
      "2026-12-01T10:00:00.123Z",
      "2026-12-01T10:00:00.124Z",
    ]);
  });

  it("never writes credentials", () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: "x", destination });
    logger.info(
      { req: { headers: { "x-api-key": "sk-live-123", "webhook-signature": "v1,abc" } } },
      "request",
    );
    logger.info({ config: { secret: "whsec_abc", apiKey: "sk-live-123" } }, "config");
    const text = lines.join("");
    expect(text).not.toContain("sk-live-123");
    expect(text).not.toContain("whsec_abc");
    expect(text).not.toContain("v1,abc");
    expect(text).toContain("[redacted]");
  });

  it("logTogether writes the lines logged in it as one write, the same lines in order", () => {
    const writes: string[] = [];
    const logger = createLogger({
      service: "scheduler",
      destination: linesTogether({ write: (chunk: string) => void writes.push(chunk) }),
    });
    const result = logTogether(logger.child({ handler: "scored" }), () => {
      for (const id of ["L1", "L2", "L3"]) logger.info({ lead_id: id }, "followups_enqueued");
      return "done";
    });
    expect(result).toBe("done");
    expect(writes).toHaveLength(1);
    const lines = writes[0]!
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.lead_id)).toEqual(["L1", "L2", "L3"]);
    // Outside logTogether, one write per line again; held lines are written even when `log` throws.
    logger.info({ lead_id: "L4" }, "followups_enqueued");
    expect(() =>
      logTogether(logger, () => {
        logger.info({ lead_id: "L5" }, "followups_enqueued");
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(writes.slice(1).map((w) => JSON.parse(w).lead_id)).toEqual(["L4", "L5"]);
  });

  it("holdLinesForTurn writes the lines of the continuations of one turn as one write, in order", async () => {
    const writes: string[] = [];
    const logger = createLogger({
      service: "dispatcher",
      destination: linesTogether({ write: (chunk: string) => void writes.push(chunk) }),
    });
    // A committed batch: its callers each log a line as their promises resolve.
    const callers = ["L1", "L2", "L3"].map(async (id) => {
      await Promise.resolve();
      await Promise.resolve();
      logger.child({ lead_id: id }).info("followup_executed");
    });
    holdLinesForTurn(logger);
    await Promise.all(callers);
    expect(writes).toHaveLength(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toHaveLength(1);
    const ids = writes[0]!
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l).lead_id);
    expect(ids).toEqual(["L1", "L2", "L3"]);
    // After the turn, one write per line again.
    logger.info({ lead_id: "L4" }, "followup_executed");
    expect(writes).toHaveLength(2);
    // What is held is written by a flush (an exit) before its turn ends.
    holdLinesForTurn(logger);
    logger.info({ lead_id: "L5" }, "followup_executed");
    expect(writes).toHaveLength(2);
    logger.flush();
    expect(writes.map((w) => w.split("\n").filter(Boolean).length)).toEqual([3, 1, 1]);
    expect(JSON.parse(writes[2]!).lead_id).toBe("L5");
  });

  it("logTogether leaves a destination given to createLogger one line per write", () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: "scheduler", destination });
    logTogether(logger, () => {
      logger.info({ lead_id: "L1" }, "followups_enqueued");
      logger.info({ lead_id: "L2" }, "followups_enqueued");
    });
    expect(lines.map((l) => JSON.parse(l).lead_id)).toEqual(["L1", "L2"]);
  });

  it("flatLineLogger still censors top-level credentials and writes flat fields as they are", () => {
    const { lines, destination } = capture();
    const flat = flatLineLogger(createLogger({ service: "x", destination }));
    flat.info({ tenant: "acme", token: "sk-live-123", password: "hunter2", due_at: ["a", "b"] }, "line");
    const line = JSON.parse(lines[0] ?? "{}");
    expect(line).toMatchObject({ service: "x", tenant: "acme", token: "[redacted]", password: "[redacted]" });
    expect(line.due_at).toEqual(["a", "b"]);
    expect(lines.join("")).not.toContain("sk-live-123");
  });

  it("masks phones and e-mails", () => {
    expect(maskPhone("+1-555-0199")).toBe("***0199");
    expect(maskEmail("alex.rivera@example.com")).toBe("a***@example.com");
    expect(maskEmail("broken")).toBe("***");
    expect(maskPhone(undefined)).toBeUndefined();
  });
});
