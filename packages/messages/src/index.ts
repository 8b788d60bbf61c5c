export { BUILT_IN_TEMPLATES, builtInMessage } from "./built-in.js";
export { checkTemplate, type TemplateProblem } from "./check.js";
export {
  createTemplateEngine,
  MEMORY_LIMIT,
  PARSE_LIMIT,
  RENDER_LIMIT_MS,
  type TemplateEngine,
} from "./engine.js";
export {
  MESSAGE_LIMITS,
  MessageRenderError,
  type MessageTemplate,
  type RenderOptions,
  renderMessage,
  type TemplateField,
} from "./render.js";
export {
  firstName,
  type MessageContext,
  type MessageVariables,
  messageVariables,
  sampleVariables,
} from "./variables.js";
