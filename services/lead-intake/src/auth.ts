/** API keys are the kit's (service-kit/api-keys.ts): the reports service authenticates with the same ones. */
export { ApiKeys, type Caller } from "@followup/service-kit";
