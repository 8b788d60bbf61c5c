export { templateRoutes as templatesRoom } from "./routes.js";
export { stepTemplateProblems, type TemplateStore, templateStore } from "./store.js";
