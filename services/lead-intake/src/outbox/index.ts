export { LeadOutbox } from "./outbox.js";
export { OutboxPublisher, type OutboxPublisherDeps } from "./publisher.js";
