export { sequenceRoutes as sequencesRoom } from "./routes.js";
export { putSequence, type SequenceStore, sequenceStore } from "./store.js";
