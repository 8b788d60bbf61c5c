import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, maskEmail, maskPhone } from "../src/index.js";

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

  it("masks phones and e-mails", () => {
    expect(maskPhone("+1-555-0199")).toBe("***0199");
    expect(maskEmail("alex.rivera@example.com")).toBe("a***@example.com");
    expect(maskEmail("broken")).toBe("***");
    expect(maskPhone(undefined)).toBeUndefined();
  });
});
