export { summaryRoutes as summaryRoom } from "./routes.js";
