export { hookRoutes as hookRoom } from "./routes.js";
