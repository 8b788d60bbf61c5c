import type { LeadOutcome, LeadScored, StoredLead } from "@followup/contracts";
import type { HttpLimits, Logger, Readiness, SealingKeyring } from "@followup/service-kit";
import type { Registry } from "prom-client";
import type { ApiKeys } from "./auth.js";
import type { Broker } from "./broker.js";
import type { LeadIntakeMetrics } from "./metrics.js";
import type { Scorer } from "./scoring/index.js";

/**
 * What every room is given (app.ts registers each room's plugin with it; main.ts and the tests
 * build it), and the seams in it that rooms implement for each other. The seams are declared
 * here rather than in the rooms that implement them, so that a room's routes, which import this
 * file, never import another room back through it.
 */
export interface AppDeps {
  config: {
    BODY_LIMIT_BYTES: number;
    RATE_LIMIT_PER_MINUTE: number;
    FOLLOWUP_ENABLED: boolean;
    PUBLIC_BASE_URL?: string | undefined;
    /** The secrets of the one-click unsubscribe tokens (the first signs); none: no link verifies. */
    UNSUBSCRIBE_SECRET?: string[] | undefined;
    /** The tenants whose keys may roll the deployment's model back (POST /ops/model/rollback). */
    MODEL_OPERATOR_TENANTS?: string[] | undefined;
  } & Partial<HttpLimits>;
  logger: Logger;
  registry: Registry;
  metrics: LeadIntakeMetrics;
  readiness: Readiness;
  broker: Broker;
  publisher: EventPublisher;
  /** The fail-open outbox behind `publisher`, when there is one (read by the lead, outcome and queue routes). */
  outbox?: LocalOutbox;
  /** The model every lead is scored with: the registry's current one (models/), live-swapped. */
  scorer: Scorer;
  apiKeys: ApiKeys;
  /** The decoded FOLLOWUP_HOOK_SECRET; without it the hook accepts API-key calls only. */
  hookKey: Buffer | undefined;
  /** CHANNEL_SECRETS_KEY (and the old keys): seals and opens channel secrets; none: not configured. */
  channelSecrets: SealingKeyring | undefined;
  now: () => Date;
}

/** Where an accepted lead went: JetStream acknowledged it, or it waits in the local outbox. */
export type LeadQueued = "published" | "local";

/**
 * The one seam through which lead-intake hands leads and their events to the broker. Each
 * method returns once JetStream has acknowledged (or, for a lead, once the durable local outbox
 * holds it), and throws BrokerUnavailableError when neither could take it. JetStreamPublisher
 * (leads/publisher.ts) talks to JetStream; OutboxPublisher (outbox/publisher.ts) wraps it with
 * the fail-open outbox.
 */
export interface EventPublisher {
  /** Stores the new lead (KV `leads`) and publishes its `lead.scored`; says where it went. */
  publishLeadScored(lead: StoredLead, event: LeadScored): Promise<LeadQueued>;
  /** Publishes `lead.outcome` for a lead whose outcome is already recorded. */
  publishLeadOutcome(lead: StoredLead, event: LeadOutcome): Promise<void>;
}

/** A lead the outbox holds: accepted, not yet stored, with its lead.scored. */
export interface QueuedLead {
  lead: StoredLead;
  event: LeadScored;
}

/** What the routes read of the local outbox: its state, and the leads it holds. */
export interface LocalOutbox {
  status(): OutboxStatus;
  /** Whether the tenant's lead waits here (not yet stored in the leads bucket). */
  holds(tenant: string, leadId: string): boolean;
  find(tenant: string, leadId: string): Promise<QueuedLead | null>;
}

export interface OutboxStatus {
  /** Leads waiting to be stored and published. */
  queued: number;
  /** OUTBOX_MAX_LEADS: at this many, intake answers 503. */
  capacity: number;
  /** Whether it is publishing right now (NATS is back). */
  draining: boolean;
}
