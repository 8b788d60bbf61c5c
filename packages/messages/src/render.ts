import type { KnownChannel, RenderedMessage, Template } from "@followup/contracts";
import { LiquidError } from "liquidjs";
import { sharedEngine, type TemplateEngine } from "./engine.js";
import type { MessageVariables } from "./variables.js";

/** What a template is rendered from: the fields of a Template (a stored record has more). */
export type MessageTemplate = Pick<Template, "channel" | "subject" | "body" | "html">;

export type TemplateField = "subject" | "body" | "html";

/** The longest rendered text of each field, per channel (characters). */
export const MESSAGE_LIMITS: Record<KnownChannel, Partial<Record<TemplateField, number>>> = {
  // Ten concatenated segments: what carriers deliver as one SMS at most.
  sms: { body: 1600 },
  // Slack truncates a message's text beyond this.
  slack: { body: 40_000 },
  // The longest line a mail header may have.
  email: { subject: 998, body: 100_000, html: 500_000 },
  hook: { body: 40_000 },
};

/** Where and why a template failed: a syntax error, an unknown variable, a limit. */
export class MessageRenderError extends Error {
  constructor(
    readonly field: TemplateField,
    readonly reason: string,
    /** 1-based, where the template says (absent for a length limit). */
    readonly position?: { line: number; column: number },
  ) {
    super(
      position === undefined
        ? `${field}: ${reason}`
        : `${field}: line ${position.line}, column ${position.column}: ${reason}`,
    );
    this.name = "MessageRenderError";
  }
}

/** liquidjs's message without the ", line:L, col:C" and the source excerpt it appends. */
function reasonOf(err: LiquidError): string {
  const first = (err.originalError?.message ?? err.message).split("\n")[0] ?? "";
  return first.replace(/, line:\d+, col:\d+$/, "");
}

/** A liquidjs error (which carries the token it failed at) as a MessageRenderError of the field. */
export function locatedError(field: TemplateField, err: unknown): MessageRenderError {
  if (err instanceof LiquidError) {
    const [line = 1, column = 1] = err.token.getPosition();
    return new MessageRenderError(field, reasonOf(err), { line, column });
  }
  // The parse limit is an assertion without a token: it is about the whole text.
  if (err instanceof Error) return new MessageRenderError(field, err.message, { line: 1, column: 1 });
  throw err;
}

export interface RenderOptions {
  engine?: TemplateEngine;
  /** Every variable must exist (when a template is checked against the sample lead). */
  strictVariables?: boolean;
}

/** One field of the template rendered (empty when the template has no such field). */
export function renderField(
  template: MessageTemplate,
  field: TemplateField,
  variables: MessageVariables,
  options: RenderOptions = {},
): string {
  const engine = options.engine ?? sharedEngine();
  const strict = options.strictVariables ?? false;
  const source = template[field] ?? "";
  const liquid = field === "html" ? engine.html : engine.text;
  let text: string;
  try {
    text = String(liquid.parseAndRenderSync(source, variables, { strictVariables: strict }));
  } catch (err) {
    throw locatedError(field, err);
  }
  // A subject is one header line: a line break in a lead's name must not start another.
  if (field === "subject") text = text.replace(/\s*[\r\n]+\s*/g, " ").trim();
  const limit = MESSAGE_LIMITS[template.channel][field];
  if (limit !== undefined && text.length > limit) {
    throw new MessageRenderError(
      field,
      `renders to ${text.length} characters; the ${template.channel} ${field} may have at most ${limit}`,
    );
  }
  return text;
}

/**
 * The message a template makes for these variables. Throws a MessageRenderError naming the field
 * (and the line and column, where the template is at fault) when it cannot be rendered.
 */
export function renderMessage(
  template: MessageTemplate,
  variables: MessageVariables,
  options: RenderOptions = {},
): RenderedMessage {
  const render = (field: TemplateField) => renderField(template, field, variables, options);
  return {
    ...(template.subject !== undefined ? { subject: render("subject") } : {}),
    body: render("body"),
    ...(template.html !== undefined ? { html: render("html") } : {}),
  };
}
