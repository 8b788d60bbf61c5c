export { readLeadSources } from "./source.js";
export { buildLeadView, type LeadSources } from "./view.js";
