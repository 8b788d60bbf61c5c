/**
 * lead-intake's API through the console's same-origin proxy. The signed-in tenant's key lives in
 * this tab's sessionStorage and goes as x-api-key on every call: no cookie is ever sent, so a
 * request forged by another site carries no credential (nothing to protect with a CSRF token).
 */

const KEY = "followup-console.api-key";

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function signIn(key) {
  sessionStorage.setItem(KEY, key);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

/** A failed call: the error envelope's code, message and field details. */
export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/**
 * Calls `path` with the key; resolves to `{data, etag}`, rejects with ApiError.
 * @param {string} method
 * @param {string} path
 * @param {{body?: unknown, headers?: Record<string,string>, key?: string}} [options]
 */
export async function call(method, path, options = {}) {
  const headers = { accept: "application/json", ...options.headers };
  const key = options.key ?? apiKey();
  if (key) headers["x-api-key"] = key;
  const init = { method, headers };
  if (options.body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "the console cannot be reached");
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: handled below
  }
  if (!res.ok) {
    const error = body?.error ?? {};
    throw new ApiError(
      res.status,
      error.code ?? `status_${res.status}`,
      error.message ?? res.statusText,
      error.details,
    );
  }
  // /ops/followup/queue answers its body without the envelope (the system it replaces).
  const data = body && typeof body === "object" && "ok" in body && "data" in body ? body.data : body;
  return { data, etag: res.headers.get("etag") };
}

export const get = (path) => call("GET", path);

/** A query string of the given non-empty values. */
export function query(values) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}
