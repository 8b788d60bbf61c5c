export { deadLetterRoutes as deadLettersRoom } from "./routes.js";
export { listDeadLetters, replayDeadLetters } from "./store.js";
