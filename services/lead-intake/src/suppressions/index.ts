import type { FastifyPluginAsync } from "fastify";
import type { AppDeps } from "../deps.js";
import { twilioInboundRoutes } from "./inbound.js";
import { twilioStatusRoutes } from "./twilio-status.js";
import { unsubscribeRoutes } from "./unsubscribe.js";

export { suppressionRoutes as suppressionsRoom } from "./routes.js";
export { SuppressionStore, suppressionStore } from "./store.js";

/**
 * The public side of suppressions, outside /v1 (no API key; each authenticates its caller):
 * the one-click unsubscribe link, Twilio's inbound SMS and its status callbacks. Each is a plugin of its own, so its
 * form parser serves its route only.
 */
export const publicSuppressionRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  await app.register(unsubscribeRoutes, deps);
  await app.register(twilioInboundRoutes, deps);
  await app.register(twilioStatusRoutes, deps);
};
