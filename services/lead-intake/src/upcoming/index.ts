export { upcomingRoutes as upcomingRoom } from "./routes.js";
export { type PendingTimer, pendingTimers } from "./store.js";
