import type { FastifyPluginAsync } from "fastify";
import type { OpenApiDocument } from "./document.js";
import { REFERENCE_CSP, renderReference } from "./reference.js";

/**
 * GET /openapi.json and GET /docs: public, like any API's documentation (no x-api-key, no rate
 * limit); they say what the routes are, never anything of a tenant. Both are built once, on the
 * first request, from the document @fastify/swagger generates at ready.
 */
export const apiDocsRoutes: FastifyPluginAsync = async (app) => {
  let page: string | undefined;
  app.get(
    "/openapi.json",
    {
      schema: {
        operationId: "getOpenApiDocument",
        tags: ["docs"],
        summary: "This OpenAPI document",
        description:
          "The OpenAPI 3.1 document of every lead-intake route, generated from the schemas they declare.",
      },
    },
    async () => app.swagger(),
  );
  app.get(
    "/docs",
    {
      schema: {
        operationId: "getReference",
        tags: ["docs"],
        summary: "The API reference page",
        description:
          "This document as one HTML page, without scripts (Content-Security-Policy default-src 'none').",
      },
    },
    async (_request, reply) => {
      page ??= renderReference(app.swagger() as unknown as OpenApiDocument);
      reply.type("text/html; charset=utf-8").header("content-security-policy", REFERENCE_CSP);
      return page;
    },
  );
};
