export * from "./api.js";
export * from "./events.js";
export * from "./json-schema.js";
export * from "./lead.js";
export * from "./records.js";
export * from "./schedule.js";
export * from "./subjects.js";
export * from "./topology.js";
