import type { Template } from "liquidjs";
import { sharedEngine, type TemplateEngine } from "./engine.js";
import {
  locatedError,
  MessageRenderError,
  type MessageTemplate,
  renderField,
  type TemplateField,
} from "./render.js";
import { knownVariables, sampleVariables } from "./variables.js";

/** One thing wrong with a template: the field, where in it (when the source is at fault), and why. */
export interface TemplateProblem {
  field: TemplateField;
  line?: number;
  column?: number;
  message: string;
}

const FIELDS: readonly TemplateField[] = ["subject", "body", "html"];

function problemOf(err: MessageRenderError): TemplateProblem {
  return {
    field: err.field,
    ...(err.position !== undefined ? { line: err.position.line, column: err.position.column } : {}),
    message: err.reason,
  };
}

/**
 * The variables a field names that the channel's templates do not have, wherever they are: in
 * every branch, not only those the sample lead takes. A path into a known variable (`lead.name.size`)
 * or through a computed index is left to the render against the sample.
 */
function unknownVariables(parsed: Template[], engine: TemplateEngine, known: Set<string>) {
  const roots = new Set([...known].map((name) => name.split(".")[0]));
  const found: { path: string; line: number; column: number }[] = [];
  for (const variables of Object.values(engine.text.analyzeSync(parsed, { partials: false }).globals)) {
    for (const variable of variables) {
      const [root, field] = variable.segments;
      if (typeof root !== "string") continue;
      const path = root === "lead" && typeof field === "string" ? `lead.${field}` : root;
      if (roots.has(root) && (path === root || known.has(path))) continue;
      found.push({ path, line: variable.location.row, column: variable.location.col });
    }
  }
  return found;
}

/**
 * What is wrong with a template, field by field, or nothing: a syntax error or unknown filter
 * (from parsing), a variable the channel does not have (from static analysis, with its line and
 * column), anything else the sample lead's render fails on with strictVariables (a limit, a
 * property a variable does not have, a rendered text too long for the channel).
 */
export function checkTemplate(template: MessageTemplate, engine = sharedEngine()): TemplateProblem[] {
  const known = new Set(knownVariables(template.channel));
  const problems: TemplateProblem[] = [];
  for (const field of FIELDS) {
    const source = template[field];
    if (source === undefined) continue;
    let parsed: Template[];
    try {
      parsed = (field === "html" ? engine.html : engine.text).parse(source);
    } catch (err) {
      problems.push(problemOf(locatedError(field, err)));
      continue;
    }
    const unknown = unknownVariables(parsed, engine, known);
    for (const { path, line, column } of unknown) {
      problems.push({
        field,
        line,
        column,
        message: `unknown variable ${path}; ${template.channel} templates have ${[...known].join(", ")}`,
      });
    }
    if (unknown.length > 0) continue;
    try {
      renderField(template, field, sampleVariables(template.channel), { engine, strictVariables: true });
    } catch (err) {
      if (!(err instanceof MessageRenderError)) throw err;
      problems.push(problemOf(err));
    }
  }
  return problems;
}
