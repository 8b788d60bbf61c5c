export { sequenceRoutes as sequencesRoom } from "./routes.js";
export { deleteSequence, getSequence, listSequences, putSequence } from "./store.js";
