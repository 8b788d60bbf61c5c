export { enrich } from "./enrichment.js";
export { leadHour, loadDefaultConversionModel, type Scorer } from "./scoring.js";
