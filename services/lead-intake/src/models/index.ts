export { LiveScorer } from "./live-scorer.js";
export { CURRENT_KEY, ModelRegistry, NothingToRollBackError, versionKey } from "./registry.js";
export { modelRoutes as modelsRoom } from "./routes.js";
export { watchCurrentModel } from "./watch.js";
