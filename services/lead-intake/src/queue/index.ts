export { queueRoutes as queueRoom } from "./routes.js";
