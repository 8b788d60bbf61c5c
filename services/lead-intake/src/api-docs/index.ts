export { type OpenApiDocument, type Operation, openApiOptions } from "./document.js";
export { escapeHtml, REFERENCE_CSP, renderReference } from "./reference.js";
export { apiDocsRoutes } from "./routes.js";
