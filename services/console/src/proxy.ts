import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { ConsoleMetrics } from "./metrics.js";
import type { Upstream } from "./upstream.js";

/**
 * Same-origin `/v1/*` and `/ops/*`: passed as they came (method, path, query, body, the caller's
 * x-api-key) to the first of `upstreams` whose paths the normalised path is one of (the reports
 * service for `/v1/reports/*`, lead-intake for the rest), so the browser needs no CORS and the
 * console adds no power of its own. Bodies are passed as bytes: the service validates them and
 * names the fields. A path none takes goes to the last, which answers 404 without calling out.
 */
export const proxyRoutes: FastifyPluginAsync<{ upstreams: Upstream[]; metrics: ConsoleMetrics }> = async (
  app,
  { upstreams, metrics },
) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const upstream = upstreams.find((u) => u.target(request.url) !== null) ?? upstreams.at(-1)!;
    const answer = await upstream.forward(
      {
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: Buffer.isBuffer(request.body) ? request.body : undefined,
      },
      request.id,
    );
    metrics.upstreamRequests.inc({ status: String(answer.status) });
    reply.code(answer.status).headers(answer.headers);
    return reply.send(answer.body);
  };
  for (const prefix of ["/v1/*", "/ops/*"]) {
    app.route({ method: ["GET", "POST", "PUT", "DELETE", "PATCH"], url: prefix, handler });
  }
};
