export { readLeadSources, readPlan, type ViewLog } from "./source.js";
export { buildLeadView, type LeadSources } from "./view.js";
