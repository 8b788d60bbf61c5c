import { createHash } from "node:crypto";
import type { OpenApiDocument, Operation } from "./document.js";

/**
 * The reference page of the OpenAPI document, rendered on the server as one HTML page with no
 * script: every operation (method, path, summary, who may call it, parameters, request body,
 * responses) and the component schemas they reference. Every string of the document is
 * escaped, so the page is as safe as its Content-Security-Policy says.
 */

const STYLE = [
  "body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:960px;padding:1rem 2rem;color:#1d1d1f}",
  "h2{border-bottom:1px solid #ddd;margin-top:2.5rem}",
  "section.op{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.25rem 1rem}",
  "h3 code{font-size:1rem}",
  ".method{display:inline-block;min-width:4.5rem;font-weight:700;text-transform:uppercase}",
  "pre{background:#f6f8fa;border-radius:4px;overflow:auto;padding:.5rem}",
  "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}",
].join("\n");

/** The page's Content-Security-Policy: nothing but its own inline style, by hash. */
export const REFERENCE_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash("sha256").update(STYLE).digest("base64")}'`,
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text or an attribute value, safe in HTML. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const SCHEMA_REF = "#/components/schemas/";
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

function anchorOf(schemaName: string): string {
  return `schema-${encodeURIComponent(schemaName)}`;
}

/** A JSON value, indented, its component references as links to the schema below. */
function jsonHtml(value: unknown, indent = ""): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((item) => inner + jsonHtml(item, inner)).join(",\n")}\n${indent}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) return "{}";
    const lines = entries.map(([key, child]) => {
      const name = escapeHtml(JSON.stringify(key));
      if (key === "$ref" && typeof child === "string" && child.startsWith(SCHEMA_REF)) {
        const target = decodeURIComponent(child.slice(SCHEMA_REF.length));
        return `${inner}${name}: <a href="#${escapeHtml(anchorOf(target))}">${escapeHtml(JSON.stringify(child))}</a>`;
      }
      return `${inner}${name}: ${jsonHtml(child, inner)}`;
    });
    return `{\n${lines.join(",\n")}\n${indent}}`;
  }
  return escapeHtml(JSON.stringify(value) ?? "null");
}

function schemaBlock(schema: unknown): string {
  return schema === undefined ? "" : `<pre>${jsonHtml(schema)}</pre>`;
}

function contentBlocks(content: Record<string, { schema?: unknown }> | undefined): string {
  if (!content) return "";
  return Object.entries(content)
    .map(([mediaType, media]) => `<p><code>${escapeHtml(mediaType)}</code></p>${schemaBlock(media.schema)}`)
    .join("");
}

function securityText(operation: Operation, document: OpenApiDocument): string {
  const alternatives = operation.security ?? [];
  if (alternatives.length === 0) return "<p>No authentication.</p>";
  const schemes = document.components?.securitySchemes ?? {};
  const ways = alternatives.map((alternative) =>
    Object.keys(alternative)
      .map((name) => {
        const scheme = schemes[name];
        const where = scheme?.name ? ` (header <code>${escapeHtml(scheme.name)}</code>)` : "";
        return `<code>${escapeHtml(name)}</code>${where}`;
      })
      .join(" and "),
  );
  return `<p>Authentication: ${ways.join(" or ")}.</p>`;
}

function parametersTable(operation: Operation): string {
  const parameters = operation.parameters ?? [];
  if (parameters.length === 0) return "";
  const rows = parameters
    .map(
      (p) =>
        `<tr><td><code>${escapeHtml(p.name)}</code></td><td>${escapeHtml(p.in)}</td>` +
        `<td>${p.required ? "yes" : "no"}</td><td>${escapeHtml(p.description ?? "")}</td>` +
        `<td><pre>${jsonHtml(p.schema ?? {})}</pre></td></tr>`,
    )
    .join("");
  return `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th>description</th><th>schema</th></tr>${rows}</table>`;
}

function operationSection(
  method: string,
  path: string,
  operation: Operation,
  document: OpenApiDocument,
): string {
  const id = operation.operationId ?? `${method}-${path}`;
  const parts = [
    `<section class="op" id="${escapeHtml(`op-${id}`)}">`,
    `<h3><span class="method">${escapeHtml(method)}</span> <code>${escapeHtml(path)}</code></h3>`,
    operation.summary ? `<p><strong>${escapeHtml(operation.summary)}</strong></p>` : "",
    operation.description ? `<p>${escapeHtml(operation.description)}</p>` : "",
    operation.operationId ? `<p>operationId <code>${escapeHtml(operation.operationId)}</code></p>` : "",
    securityText(operation, document),
    parametersTable(operation),
  ];
  if (operation.requestBody) {
    const required = operation.requestBody.required ? "required" : "optional";
    parts.push(`<h4>Request body (${required})</h4>`, contentBlocks(operation.requestBody.content));
  }
  parts.push("<h4>Responses</h4>");
  for (const [status, response] of Object.entries(operation.responses)) {
    parts.push(
      `<h5><code>${escapeHtml(status)}</code> ${escapeHtml(response.description)}</h5>`,
      contentBlocks(response.content),
    );
  }
  parts.push("</section>");
  return parts.join("\n");
}

/** The HTML reference page of `document`. */
export function renderReference(document: OpenApiDocument): string {
  const byTag = new Map<string, string[]>();
  for (const tag of document.tags ?? []) byTag.set(tag.name, []);
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = methods[method];
      if (!operation) continue;
      const tag = operation.tags?.[0] ?? "other";
      const sections = byTag.get(tag) ?? [];
      sections.push(operationSection(method, path, operation, document));
      byTag.set(tag, sections);
    }
  }
  const descriptions = new Map((document.tags ?? []).map((tag) => [tag.name, tag.description]));
  const groups = [...byTag]
    .filter(([, sections]) => sections.length > 0)
    .map(([tag, sections]) => {
      const about = descriptions.get(tag);
      return [`<h2>${escapeHtml(tag)}</h2>`, about ? `<p>${escapeHtml(about)}</p>` : "", ...sections].join(
        "\n",
      );
    });
  const schemes = Object.entries(document.components?.securitySchemes ?? {}).map(
    ([name, scheme]) =>
      `<dt><code>${escapeHtml(name)}</code> (${escapeHtml(scheme.type)}${scheme.name ? `, header <code>${escapeHtml(scheme.name)}</code>` : ""})</dt>` +
      `<dd>${escapeHtml(scheme.description ?? "")}</dd>`,
  );
  const schemas = Object.entries(document.components?.schemas ?? {}).map(
    ([name, schema]) =>
      `<h3 id="${escapeHtml(anchorOf(name))}"><code>${escapeHtml(name)}</code></h3>${schemaBlock(schema)}`,
  );
  const { info } = document;
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(info.title)} ${escapeHtml(info.version)}: API reference</title>`,
    `<style>${STYLE}</style>`,
    "</head><body>",
    `<h1>${escapeHtml(info.title)} <small>${escapeHtml(info.version)}</small></h1>`,
    info.description ? `<p>${escapeHtml(info.description)}</p>` : "",
    `<p>OpenAPI ${escapeHtml(document.openapi)}: the document is at <a href="openapi.json">/openapi.json</a>.</p>`,
    schemes.length > 0 ? `<h2>Authentication</h2><dl>${schemes.join("")}</dl>` : "",
    ...groups,
    schemas.length > 0 ? `<h2>Schemas</h2>\n${schemas.join("\n")}` : "",
    "</body></html>",
    "",
  ].join("\n");
}
