export { templateRoutes as templatesRoom } from "./routes.js";
export { putTemplate, stepTemplateProblems, type TemplateStore, templateStore } from "./store.js";
