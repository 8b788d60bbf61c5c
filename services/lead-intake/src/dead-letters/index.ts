export { deadLetterRoutes as deadLettersRoom } from "./routes.js";
export {
  type DeadLetterFilter,
  deadLetterSubject,
  listDeadLetters,
  replayDeadLetters,
} from "./store.js";
