import type { FastifyReply } from "fastify";
import { escapeHtml } from "../api-docs/index.js";

/**
 * The small HTML pages a recipient sees (the one-click unsubscribe link): no script, no style,
 * every text escaped, under `default-src 'none'`; the token in the URL is not sent on as a
 * Referer, and the page is not cached.
 */

export const PAGE_CSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export interface Page {
  title: string;
  lines: string[];
  /** A button that POSTs the RFC 8058 body to the page's own URL. */
  confirm?: string;
}

export function renderPage(page: Page): string {
  const lines = page.lines.map((line) => `<p>${escapeHtml(line)}</p>`).join("\n");
  const form = page.confirm
    ? `<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">` +
      `<button type="submit">${escapeHtml(page.confirm)}</button></form>`
    : "";
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(page.title)}</title>` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"></head>\n` +
    `<body><h1>${escapeHtml(page.title)}</h1>\n${lines}\n${form}</body></html>\n`
  );
}

export function sendPage(reply: FastifyReply, status: number, page: Page): FastifyReply {
  return reply
    .code(status)
    .header("content-security-policy", PAGE_CSP)
    .header("referrer-policy", "no-referrer")
    .header("cache-control", "no-store")
    .type("text/html; charset=utf-8")
    .send(renderPage(page));
}
