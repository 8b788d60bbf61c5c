import { readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyPluginAsync } from "fastify";

/** The console's pages: plain HTML, CSS and ES modules from public/, served as they are (no build). */
export const PUBLIC_DIR = fileURLToPath(new URL("../public/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/**
 * Every response of the console: scripts only from this origin (no inline script, no eval),
 * styles only from files, fetches only to this origin, no framing, no referrer.
 */
export const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
} as const;

/** The files of public/ (one level of folders), read once at start: a path names one or nothing. */
function readPublic(dir: string): Map<string, { type: string; body: Buffer }> {
  const files = new Map<string, { type: string; body: Buffer }>();
  const walk = (folder: string, prefix: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path, `${prefix}${entry.name}/`);
      else if (TYPES[extname(entry.name)]) {
        files.set(`${prefix}${entry.name}`, { type: TYPES[extname(entry.name)]!, body: readFileSync(path) });
      }
    }
  };
  walk(dir, "");
  return files;
}

export const pageRoutes: FastifyPluginAsync<{ dir?: string }> = async (app, options) => {
  const files = readPublic(options.dir ?? PUBLIC_DIR);
  const index = files.get("index.html");
  if (!index) throw new Error("the console's public/index.html is missing");
  app.get("/", async (_request, reply) => reply.redirect("/console/"));
  app.get("/console", async (_request, reply) => reply.redirect("/console/"));
  app.get("/console/", async (_request, reply) =>
    reply.header("content-type", index.type).header("cache-control", "no-cache").send(index.body),
  );
  app.get<{ Params: { "*": string } }>("/console/*", async (request, reply) => {
    const file = files.get(request.params["*"]);
    if (!file) return reply.callNotFound();
    return reply.header("content-type", file.type).header("cache-control", "no-cache").send(file.body);
  });
};
