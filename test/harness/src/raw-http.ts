import { connect } from "node:net";

/** One response read off a raw connection. */
export interface RawResponse {
  status: number;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: string;
}

/** What a raw exchange saw until the server closed the connection. */
export interface RawExchange {
  /** Every complete response, in order (several on a kept-alive connection). */
  responses: RawResponse[];
  /** From the connection's opening to its closing by the server. */
  closedAfterMs: number;
  /** Bytes of the request written before the close. */
  bytesSent: number;
}

export interface RawExchangeOptions {
  /** Send the request one byte every `dripMs` (a slow client) instead of all at once. */
  dripMs?: number;
  /** With `dripMs`: write this many bytes at once first (the headers, to drip only the body). */
  dripAfter?: number;
  /** Reject when the server has not closed the connection by then. Default 10 000 ms. */
  deadlineMs?: number;
}

/**
 * Writes `request` as-is (malformed requests included) to a new connection to 127.0.0.1:`port`
 * and reads until the server closes it: for what fetch refuses to send, and for slow clients.
 */
export function rawExchange(
  port: number,
  request: string,
  options: RawExchangeOptions = {},
): Promise<RawExchange> {
  const { dripMs, dripAfter = 0, deadlineMs = 10_000 } = options;
  const bytes = Buffer.from(request, "latin1");
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    let sent = 0;
    let drip: NodeJS.Timeout | undefined;
    const socket = connect({ port, host: "127.0.0.1" }, () => {
      sent = dripMs === undefined ? bytes.length : Math.min(dripAfter, bytes.length);
      if (sent > 0) socket.write(bytes.subarray(0, sent));
      if (dripMs === undefined) return;
      // Bounded: stops after the last byte, or when the server has closed the connection.
      drip = setInterval(() => {
        if (sent >= bytes.length || socket.destroyed) return clearInterval(drip);
        socket.write(bytes.subarray(sent, sent + 1));
        sent++;
      }, dripMs);
    });
    const deadline = setTimeout(() => {
      clearInterval(drip);
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${deadlineMs} ms (${sent} bytes sent)`));
    }, deadlineMs);
    socket.on("data", (chunk) => chunks.push(chunk));
    // Writes after the server's close fail (EPIPE, ECONNRESET); the close is what is awaited.
    socket.on("error", () => {});
    socket.on("close", () => {
      clearInterval(drip);
      clearTimeout(deadline);
      resolve({
        responses: parseResponses(Buffer.concat(chunks).toString("latin1")),
        closedAfterMs: Date.now() - started,
        bytesSent: sent,
      });
    });
  });
}

function parseResponses(text: string): RawResponse[] {
  const responses: RawResponse[] = [];
  let rest = text;
  for (;;) {
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0) return responses;
    const [statusLine = "", ...lines] = rest.slice(0, end).split("\r\n");
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers["content-length"] ?? rest.length - end - 4);
    const body = Buffer.from(rest.slice(end + 4), "latin1").subarray(0, length);
    responses.push({ status: Number(statusLine.split(" ")[1]), headers, body: body.toString("utf8") });
    rest = rest.slice(end + 4 + body.length);
  }
}

/**
 * A failed response in the terms every edge test checks: its status, the envelope's `ok` and
 * code, whether `request_id` is set and matches `x-request-id`, and whether nosniff is set.
 */
export function errorSummary(response: RawResponse) {
  const body = JSON.parse(response.body) as {
    ok?: unknown;
    error?: { code?: unknown };
    request_id?: unknown;
  };
  return {
    status: response.status,
    ok: body.ok,
    code: body.error?.code,
    requestId: typeof body.request_id === "string" && body.request_id === response.headers["x-request-id"],
    nosniff: response.headers["x-content-type-options"] === "nosniff",
  };
}

export interface SlowClientOptions {
  /** The server's timeout that should cut the slow client off. */
  timeoutMs: number;
  /** One byte every this many ms. Default 100. */
  dripMs?: number;
  /** Bytes written at once before the drip (the headers, to drip only the body). */
  dripAfter?: number;
  /** A normal request on another connection, made while the slow one drips; resolves to its status. */
  meanwhile: () => Promise<number>;
}

/**
 * A slow client (a loris) on one connection and a normal request on another. `problems` lists
 * what went wrong, if anything: the normal request was not answered (200) before the slow one
 * was cut off, or the slow one was cut off before the timeout, more than 1.5 s after it, or not at
 * all before it had sent everything.
 */
export async function slowClientBeside(port: number, request: string, options: SlowClientOptions) {
  const { timeoutMs, dripMs = 100, dripAfter = 0, meanwhile } = options;
  const slow = rawExchange(port, request, { dripMs, dripAfter, deadlineMs: 5 * timeoutMs });
  const started = Date.now();
  const status = await meanwhile();
  const meanwhileMs = Date.now() - started;
  const { closedAfterMs, bytesSent, responses } = await slow;
  const problems: string[] = [];
  if (status !== 200) problems.push(`the normal request got ${status}`);
  if (meanwhileMs >= closedAfterMs) problems.push(`the normal request took ${meanwhileMs} ms`);
  if (closedAfterMs < timeoutMs - 50 || closedAfterMs >= timeoutMs + 1500) {
    problems.push(`cut off after ${closedAfterMs} ms, for a timeout of ${timeoutMs} ms`);
  }
  if (bytesSent >= Buffer.byteLength(request, "latin1"))
    problems.push("not cut off before the request was sent");
  return { problems, closedAfterMs, responses };
}
