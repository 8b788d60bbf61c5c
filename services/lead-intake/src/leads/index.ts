import type { FastifyPluginAsync } from "fastify";
import type { AppDeps } from "../deps.js";
import { enrolmentRoutes } from "./enrolment.js";
import { outcomeRoutes } from "./outcome.js";
import { leadRoutes } from "./routes.js";

export { getLead } from "./leads-store.js";
export { JetStreamPublisher } from "./publisher.js";

/** The leads room: POST /v1/lead, GET /v1/lead/:id, POST /v1/lead/:id/outcome, /enroll and /unenroll. */
export const leadsRoom: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  await app.register(leadRoutes, deps);
  await app.register(outcomeRoutes, deps);
  await app.register(enrolmentRoutes, deps);
};
