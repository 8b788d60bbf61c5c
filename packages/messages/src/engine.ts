import { Liquid, type LiquidOptions } from "liquidjs";

/**
 * The one Liquid configuration of the engine: lead-intake checks and previews templates with it,
 * the dispatcher renders them at delivery. liquidjs's limits are cooperative, not a sandbox
 * (templates are written by a tenant), so the templates are kept small and every render bounded.
 */

/** The longest Liquid source one parse accepts (a field's source limit is below it). */
export const PARSE_LIMIT = 64 * 1024;
/**
 * How long one render may take, in milliseconds: a loop bomb fails here, not after minutes. A
 * render blocks the event loop, so this bounds what one call can take from every other request;
 * a real template renders in well under a millisecond.
 */
export const RENDER_LIMIT_MS = 100;
/** What one render may allocate (ranges, joins, appends), in liquidjs's units (about characters). */
export const MEMORY_LIMIT = 1_000_000;

/** Tags that read other templates (from disk, by default): a template is one self-contained text. */
const FILE_TAGS = ["include", "render", "layout"] as const;

/**
 * Filters taken away. `raw` would turn off the HTML escaping of e-mail HTML for a value, and every
 * value a template sees comes from a lead, that is from whoever filled in a form.
 */
const REMOVED_FILTERS = ["raw"] as const;

/** The two Liquid instances: one for text (SMS, Slack, subjects, e-mail text), one for e-mail HTML. */
export interface TemplateEngine {
  text: Liquid;
  /** Every output is HTML-escaped (`outputEscape: "escape"`). */
  html: Liquid;
}

function liquid(options: LiquidOptions): Liquid {
  const engine = new Liquid({
    // A value's inherited properties (constructor, __proto__, toString) are not reachable.
    ownPropertyOnly: true,
    // A misspelt filter is an error, not silently skipped.
    strictFilters: true,
    parseLimit: PARSE_LIMIT,
    renderLimit: RENDER_LIMIT_MS,
    memoryLimit: MEMORY_LIMIT,
    // An empty in-memory file system: nothing is ever looked up on disk (and the tags that would
    // look are removed below).
    templates: {},
    relativeReference: false,
    cache: false,
    ...options,
  });
  for (const tag of FILE_TAGS) delete engine.tags[tag];
  for (const filter of REMOVED_FILTERS) engine.unregisterFilter(filter);
  return engine;
}

export function createTemplateEngine(): TemplateEngine {
  return { text: liquid({}), html: liquid({ outputEscape: "escape" }) };
}

let shared: TemplateEngine | undefined;

/** The engine the module's functions use unless given one: it holds no state between renders. */
export function sharedEngine(): TemplateEngine {
  shared ??= createTemplateEngine();
  return shared;
}
