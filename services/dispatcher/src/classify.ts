/**
 * What a channel's answer means for a follow-up (its classification): delivered, worth
 * retrying (and why), or permanent; and, with the attempts left, the attempt's result. The rules of the delivery semantics live here and nowhere else:
 * 2xx delivered; 5xx, 408, 429, timeouts and connection errors retried; any other status
 * permanent (a 4xx means the receiver refuses this follow-up; a 3xx means the hook URL is
 * wrong: retrying either cannot help, an operator fixes it and replays the dead letter).
 */

/**
 * `smtp_4xx`: an SMTP server's transient refusal (RFC 5321 4yz replies, and 503), e-mail over
 * SMTP only. `quiet_hours`: an SMS due outside the recipient's send hours, held to their opening.
 */
export const RETRY_REASONS = [
  "status_5xx",
  "status_408",
  "status_429",
  "timeout",
  "connection",
  "smtp_4xx",
  "quiet_hours",
] as const;
export type RetryReason = (typeof RETRY_REASONS)[number];

/** `suppressed`: the recipient is on the tenant's suppression list; nothing was sent, nothing retried. */
export type Classification =
  | { kind: "delivered" }
  | { kind: "retry"; reason: RetryReason }
  | { kind: "permanent" }
  | { kind: "suppressed" };

export function classifyStatus(status: number): Classification {
  if (status >= 200 && status < 300) return { kind: "delivered" };
  if (status >= 500 && status < 600) return { kind: "retry", reason: "status_5xx" };
  if (status === 408) return { kind: "retry", reason: "status_408" };
  if (status === 429) return { kind: "retry", reason: "status_429" };
  return { kind: "permanent" };
}

/** Error codes (node and undici) of a call that ran out of time. */
const TIMEOUT_CODES = new Set([
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
]);

/**
 * Error codes that no retry can fix: the request itself cannot be made (a malformed hook
 * URL or an option the client refuses). Everything else that is not a timeout counts as
 * a connection error and is retried: refused, reset, DNS, TLS, closed sockets.
 */
const PERMANENT_CODES = new Set(["UND_ERR_INVALID_ARG", "ERR_INVALID_URL", "UND_ERR_NOT_SUPPORTED"]);

/** Classifies an error thrown by a channel call (no status was received). */
export function classifyError(err: unknown): Classification {
  const code = errorCode(err);
  const name = err instanceof Error ? err.name : undefined;
  if ((code && TIMEOUT_CODES.has(code)) || name === "TimeoutError")
    return { kind: "retry", reason: "timeout" };
  if (code && PERMANENT_CODES.has(code)) return { kind: "permanent" };
  return { kind: "retry", reason: "connection" };
}

/** The code of an error or of its cause (fetch-style wrappers put the socket error in `cause`). */
export function errorCode(err: unknown): string | undefined {
  for (let current = err, depth = 0; current && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && code !== "") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A one-line description for results, dead letters and logs: `ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9`. */
export function describeError(err: unknown): string {
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  const text = code && !message.includes(code) ? `${code}: ${message}` : message;
  return text.length > 500 ? `${text.slice(0, 497)}...` : text;
}

/**
 * The result of one attempt: `ok`; `suppressed` (final, no dead letter); `error` (retried) while
 * attempts remain; `dead` when the failure is permanent or this was the last attempt (`attempt`
 * counts deliveries, so crashes too).
 */
export function attemptResult(
  classification: Classification,
  attempt: number,
  maxAttempts: number,
):
  | { result: "ok" }
  | { result: "suppressed" }
  | { result: "error"; reason: RetryReason }
  | { result: "dead"; deadReason: "permanent" | "exhausted" } {
  if (classification.kind === "delivered") return { result: "ok" };
  if (classification.kind === "suppressed") return { result: "suppressed" };
  if (classification.kind === "permanent") return { result: "dead", deadReason: "permanent" };
  // A hold for the recipient's send hours is no failure: it never uses up the last attempt.
  if (attempt < maxAttempts || classification.reason === "quiet_hours")
    return { result: "error", reason: classification.reason };
  return { result: "dead", deadReason: "exhausted" };
}
