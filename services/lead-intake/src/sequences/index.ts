export { sequenceRoutes as sequencesRoom } from "./routes.js";
export { sequenceStore } from "./store.js";
