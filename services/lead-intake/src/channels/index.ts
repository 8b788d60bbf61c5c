export { channelRoutes as channelsRoom } from "./routes.js";
export { openSettings, UnreadableSecretError } from "./sealed.js";
export { channelStore } from "./store.js";
