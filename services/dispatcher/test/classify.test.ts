import { describe, expect, it } from "vitest";
import { attemptResult, classifyError, classifyStatus, describeError, errorCode } from "../src/classify.js";

function codeError(code: string, message = `failed with ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

describe("classifying a channel's answer", () => {
  it.each([
    [200, { kind: "delivered" }],
    [201, { kind: "delivered" }],
    [204, { kind: "delivered" }],
    [299, { kind: "delivered" }],
    [500, { kind: "retry", reason: "status_5xx" }],
    [502, { kind: "retry", reason: "status_5xx" }],
    [503, { kind: "retry", reason: "status_5xx" }],
    [504, { kind: "retry", reason: "status_5xx" }],
    [599, { kind: "retry", reason: "status_5xx" }],
    [408, { kind: "retry", reason: "status_408" }],
    [429, { kind: "retry", reason: "status_429" }],
    [400, { kind: "permanent" }],
    [401, { kind: "permanent" }],
    [403, { kind: "permanent" }],
    [404, { kind: "permanent" }],
    [409, { kind: "permanent" }],
    [410, { kind: "permanent" }],
    [413, { kind: "permanent" }],
    [422, { kind: "permanent" }],
    [301, { kind: "permanent" }],
    [302, { kind: "permanent" }],
    [100, { kind: "permanent" }],
  ])("status %i -> %o", (status, classification) => {
    expect(classifyStatus(status)).toEqual(classification);
  });

  it.each([
    ["ECONNREFUSED", "connection"],
    ["ECONNRESET", "connection"],
    ["EPIPE", "connection"],
    ["ENOTFOUND", "connection"],
    ["EAI_AGAIN", "connection"],
    ["EHOSTUNREACH", "connection"],
    ["UND_ERR_SOCKET", "connection"],
    ["UND_ERR_CLOSED", "connection"],
    ["CERT_HAS_EXPIRED", "connection"],
    ["UND_ERR_CONNECT_TIMEOUT", "timeout"],
    ["UND_ERR_HEADERS_TIMEOUT", "timeout"],
    ["UND_ERR_BODY_TIMEOUT", "timeout"],
    ["ETIMEDOUT", "timeout"],
  ])("error %s is retried as %s", (code, reason) => {
    expect(classifyError(codeError(code))).toEqual({ kind: "retry", reason });
  });

  it("finds the code in a cause, and treats an abort by timeout as a timeout", () => {
    const wrapped = new TypeError("fetch failed", { cause: codeError("ECONNREFUSED") });
    expect(classifyError(wrapped)).toEqual({ kind: "retry", reason: "connection" });
    expect(errorCode(wrapped)).toBe("ECONNREFUSED");
    const timeout = new DOMException("The operation was aborted due to timeout", "TimeoutError");
    expect(classifyError(timeout)).toEqual({ kind: "retry", reason: "timeout" });
  });

  it("makes a request that cannot be built permanent, and anything unknown a connection retry", () => {
    expect(classifyError(codeError("UND_ERR_INVALID_ARG"))).toEqual({ kind: "permanent" });
    expect(classifyError(codeError("ERR_INVALID_URL"))).toEqual({ kind: "permanent" });
    expect(classifyError(new Error("something odd"))).toEqual({ kind: "retry", reason: "connection" });
    expect(classifyError("a string")).toEqual({ kind: "retry", reason: "connection" });
  });

  it("describes an error on one line with its code, bounded", () => {
    expect(describeError(codeError("UND_ERR_HEADERS_TIMEOUT", "Headers Timeout Error"))).toBe(
      "UND_ERR_HEADERS_TIMEOUT: Headers Timeout Error",
    );
    expect(describeError(codeError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:9"))).toBe(
      "connect ECONNREFUSED 127.0.0.1:9",
    );
    expect(describeError(new Error("x".repeat(2_000))).length).toBe(500);
  });

  it("retries while attempts remain, then dead-letters as exhausted; permanent is dead at once", () => {
    const retry = { kind: "retry", reason: "status_5xx" } as const;
    expect(attemptResult({ kind: "delivered" }, 8, 8)).toEqual({ result: "ok" });
    expect(attemptResult(retry, 1, 8)).toEqual({ result: "error", reason: "status_5xx" });
    expect(attemptResult(retry, 7, 8)).toEqual({ result: "error", reason: "status_5xx" });
    expect(attemptResult(retry, 8, 8)).toEqual({ result: "dead", deadReason: "exhausted" });
    // Deliveries beyond the limit (crashes, hand-backs) still get one call, and die on failure.
    expect(attemptResult(retry, 12, 8)).toEqual({ result: "dead", deadReason: "exhausted" });
    expect(attemptResult({ kind: "permanent" }, 1, 8)).toEqual({ result: "dead", deadReason: "permanent" });
  });

  it("ends a suppressed follow-up at once, and never dead-letters a hold for the send hours", () => {
    expect(attemptResult({ kind: "suppressed" }, 1, 8)).toEqual({ result: "suppressed" });
    const held = { kind: "retry", reason: "quiet_hours" } as const;
    expect(attemptResult(held, 8, 8)).toEqual({ result: "error", reason: "quiet_hours" });
  });
});
