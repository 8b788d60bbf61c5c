import { wildcards } from "./subjects.js";

/**
 * Streams, consumers and KV buckets as data: provisioning (service-kit), the broker permissions
 * (permissions.ts) and tests read this one definition. Durations are milliseconds; 0 means "no
 * limit". Field meanings follow the JetStream API of the same names. Each entry also says which
 * service does what with it (`access`, `consumedBy`): that is all the broker lets the service do.
 */

/** The services that connect to NATS, each under its own broker identity (permissions.ts). */
export const SERVICE_IDENTITIES = ["lead-intake", "scheduler", "dispatcher", "reports", "console"] as const;
export type ServiceIdentity = (typeof SERVICE_IDENTITIES)[number];

/** What each service does with a stream, besides consuming it through a durable (ConsumerSpec). */
export interface StreamAccess {
  /** Publish to the stream's subjects (acknowledged JetStream publishes). */
  writers: readonly ServiceIdentity[];
  /** Publish to one of the stream's subjects only: that subject's writers. */
  subjectWriters?: Readonly<Record<string, readonly ServiceIdentity[]>>;
  /** Read stored messages by subject or sequence (direct get, batched or not). */
  readers: readonly ServiceIdentity[];
  /** Read the stream's info only (its message count). */
  inspectors: readonly ServiceIdentity[];
  /** Purge messages by subject filter. */
  purgers: readonly ServiceIdentity[];
  /** Delete single messages by sequence. */
  deleters: readonly ServiceIdentity[];
  /**
   * Subscribe to the stream's subjects (and its republish target) as core NATS messages: a live
   * tail of what is stored, as it is stored, with no JetStream API and no stored message read.
   */
  tailers: readonly ServiceIdentity[];
}

/** What each service does with a KV bucket. */
export interface BucketAccess {
  /** Put, create, update (and so delete) keys. */
  writers: readonly ServiceIdentity[];
  /** Get keys, and read the bucket's messages by subject (the last of each key under a filter too). */
  readers: readonly ServiceIdentity[];
  /**
   * Watch the bucket's keys: each watch is an ordered consumer of the client's own on the bucket's
   * stream, created, read and deleted by it, delivering to its inbox.
   */
  watchers: readonly ServiceIdentity[];
}

/** The stream behind a KV bucket. */
export function bucketStream(bucket: string): string {
  return `KV_${bucket}`;
}

export type Retention = "limits" | "workqueue" | "interest";

export interface StreamSpec {
  name: string;
  description: string;
  subjects: string[];
  retention: Retention;
  replicas: number;
  maxAgeMs: number;
  duplicateWindowMs: number;
  /** Per-message TTL (`Nats-TTL`), nats-server >= 2.11. */
  allowMsgTtl?: boolean;
  /** How long the server keeps the marker it stores when a message's TTL runs out. */
  subjectDeleteMarkerTtlMs?: number;
  maxMsgsPerSubject?: number;
  /** Atomic batch publish (ADR-50, nats-server >= 2.12): a batch of up to 1000 stored with a few fsyncs. */
  allowAtomic?: boolean;
  republish?: { src: string; dest: string; headersOnly: boolean };
  access: StreamAccess;
}

export interface ConsumerSpec {
  stream: string;
  durable: string;
  description: string;
  filterSubjects: string[];
  ackWaitMs: number;
  /** -1: redeliver until acked or terminated; poison messages are terminated by the code. */
  maxDeliver: number;
  maxAckPending: number;
  /** The one service that pulls from and acknowledges on this durable. */
  consumedBy: ServiceIdentity;
}

export interface BucketSpec {
  bucket: string;
  description: string;
  history: number;
  ttlMs: number;
  replicas: number;
  /** `allow_atomic` on the bucket's stream: its writer creates many keys in one atomic batch. */
  allowAtomic?: boolean;
  access: BucketAccess;
}

export interface TopologyOptions {
  /** 1 for the embedded single server, 3 in a cluster. */
  replicas?: number;
  /** FOLLOWUP_QUEUE: the work queue's name; its stream is the upper-cased name. */
  queue?: string;
}

/** Roles nobody has, so each entry below names only the roles that somebody has. */
const NO_STREAM_ACCESS: StreamAccess = {
  writers: [],
  readers: [],
  inspectors: [],
  purgers: [],
  deleters: [],
  tailers: [],
};

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const DAY = 24 * 60 * MINUTE;

/** How long an expiry marker outlives its timer: a scheduler outage shorter than this loses nothing. */
export const MARKER_TTL_MS = 7 * DAY;

/**
 * The header of the marker nats-server stores when a timer's TTL runs out (value `MaxAge`,
 * empty body: jetstream-facts 4); a timer itself has none.
 */
export const MARKER_REASON_HEADER = "Nats-Marker-Reason";

export const DEFAULT_QUEUE = "followups";

export function queueStreamName(queue: string): string {
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(queue)) {
    throw new Error(
      `FOLLOWUP_QUEUE must be 1-32 characters of A-Z, a-z, 0-9, '_' or '-' (got ${JSON.stringify(queue)})`,
    );
  }
  return queue.toUpperCase();
}

export function topology(options: TopologyOptions = {}) {
  const replicas = options.replicas ?? 1;
  const queue = options.queue ?? DEFAULT_QUEUE;

  const streams = {
    leads: {
      name: "LEADS",
      description: "Lead events: scored, outcome, enrolled and unenrolled by hand",
      subjects: [wildcards.leads],
      retention: "limits",
      replicas,
      maxAgeMs: 90 * DAY,
      duplicateWindowMs: 2 * MINUTE,
      // lead-intake reads a lead's events back for GET /v1/lead/:id, and every outcome when it
      // retrains the model (train:outcomes); reports reads them all when it rebuilds. The console
      // tails a lead's events for its live page (after lead-intake showed the lead).
      access: {
        ...NO_STREAM_ACCESS,
        writers: ["lead-intake"],
        readers: ["lead-intake", "reports"],
        tailers: ["console"],
      },
    },
    timers: {
      name: "FOLLOWUP_TIMERS",
      description:
        "A lead's next follow-up's timer (one at a time); its expiry marker (Nats-Marker-Reason: MaxAge) makes it due",
      subjects: [wildcards.followupTimer],
      retention: "limits",
      replicas,
      maxAgeMs: 0,
      duplicateWindowMs: 2 * MINUTE,
      allowMsgTtl: true,
      // Below this the server would raise every Nats-TTL to the marker TTL (jetstream-facts 2).
      maxMsgsPerSubject: 1,
      subjectDeleteMarkerTtlMs: MARKER_TTL_MS,
      // The scheduler stores the timers of many leads in one atomic batch, the dispatcher the
      // next steps' of the markers it holds.
      allowAtomic: true,
      republish: { src: wildcards.followupTimer, dest: wildcards.followupFired, headersOnly: true },
      // The scheduler writes a lead's first timer; the dispatcher consumes the markers
      // (dispatchMarkers), leaves them to their TTL and writes each lead's next timer; a
      // stopping outcome purges the lead's timers. lead-intake counts them for GET /v1/queue and
      // reads a lead's last message per step (a marker says the step fired) for its view.
      access: {
        ...NO_STREAM_ACCESS,
        writers: ["scheduler", "dispatcher"],
        readers: ["lead-intake"],
        inspectors: ["scheduler", "lead-intake"],
        purgers: ["scheduler"],
        tailers: ["console"],
      },
    },
    followups: {
      name: queueStreamName(queue),
      description: "Due follow-ups waiting for delivery (work queue)",
      subjects: [wildcards.followupDue],
      retention: "workqueue",
      replicas,
      maxAgeMs: 0,
      duplicateWindowMs: 10 * MINUTE,
      // lead-intake publishes a replayed dead letter's follow-up here (fired timers go straight
      // to the dispatcher); the scheduler purges a lead's queued replays on a stopping outcome.
      access: {
        ...NO_STREAM_ACCESS,
        writers: ["lead-intake"],
        inspectors: ["lead-intake"],
        purgers: ["scheduler"],
      },
    },
    results: {
      name: "FOLLOWUP_RESULTS",
      description: "One event per delivery attempt, and one per replay of a dead letter",
      subjects: [wildcards.followupResult, wildcards.followupReplayed],
      retention: "limits",
      replicas,
      maxAgeMs: 90 * DAY,
      duplicateWindowMs: 2 * MINUTE,
      // The dispatcher stores results in atomic batches: a few fsyncs per batch, not one per result.
      allowAtomic: true,
      access: {
        ...NO_STREAM_ACCESS,
        writers: ["dispatcher"],
        // lead-intake records each replay here, for the lead's timeline, and turns Twilio's status
        // callbacks into results (a provider's report on a sent SMS).
        subjectWriters: {
          [wildcards.followupReplayed]: ["lead-intake"],
          [wildcards.followupResult]: ["lead-intake"],
        },
        // The dispatcher reads a step's last result when its marker comes again (a lost ack);
        // reports reads every result when it rebuilds its projection.
        readers: ["lead-intake", "dispatcher", "reports"],
        tailers: ["console"],
      },
    },
    dead: {
      name: "FOLLOWUP_DLQ",
      description: "Follow-ups that could not be delivered; kept until replayed",
      subjects: [wildcards.followupDead],
      retention: "limits",
      replicas,
      maxAgeMs: 0,
      duplicateWindowMs: 2 * MINUTE,
      // lead-intake lists dead letters, and deletes one once its replay is acknowledged.
      access: {
        ...NO_STREAM_ACCESS,
        writers: ["dispatcher"],
        readers: ["lead-intake"],
        inspectors: ["lead-intake"],
        deleters: ["lead-intake"],
        tailers: ["console"],
      },
    },
  } satisfies Record<string, StreamSpec>;

  const consumers = {
    scored: {
      stream: streams.leads.name,
      durable: "scheduler-scored",
      description: "scheduler: qualifying leads become timers",
      filterSubjects: [wildcards.leadScored],
      ackWaitMs: 30 * SECOND,
      maxDeliver: -1,
      maxAckPending: 2000,
      consumedBy: "scheduler",
    },
    outcomes: {
      stream: streams.leads.name,
      durable: "scheduler-outcomes",
      description: "scheduler: stopping outcomes cancel pending follow-ups",
      filterSubjects: [wildcards.leadOutcome],
      ackWaitMs: 30 * SECOND,
      maxDeliver: -1,
      maxAckPending: 1000,
      consumedBy: "scheduler",
    },
    enrolments: {
      stream: streams.leads.name,
      durable: "scheduler-enrolments",
      description: "scheduler: enrolments and unenrolments by hand change a lead's plan",
      filterSubjects: [wildcards.leadEnrolled, wildcards.leadUnenrolled],
      ackWaitMs: 30 * SECOND,
      maxDeliver: -1,
      // One at a time, in stream order: an unenrolment never overtakes the enrolment before it.
      maxAckPending: 1,
      consumedBy: "scheduler",
    },
    dispatchMarkers: {
      stream: streams.timers.name,
      durable: "dispatcher-markers",
      description: "dispatcher: a timer's expiry marker is delivered through its channel",
      filterSubjects: [wildcards.followupTimer],
      ackWaitMs: 30 * SECOND,
      maxDeliver: -1,
      maxAckPending: 4000,
      consumedBy: "dispatcher",
    },
    dispatch: {
      stream: streams.followups.name,
      durable: "dispatcher",
      description: "dispatcher: due follow-ups are delivered through their channel",
      filterSubjects: [wildcards.followupDue],
      ackWaitMs: 30 * SECOND,
      maxDeliver: -1,
      maxAckPending: 256,
      consumedBy: "dispatcher",
    },
    reportsLeads: {
      stream: streams.leads.name,
      durable: "reports-leads",
      description: "reports: scored leads and outcomes into the conversion projection",
      filterSubjects: [wildcards.leadScored, wildcards.leadOutcome],
      ackWaitMs: 30 * SECOND,
      maxDeliver: -1,
      maxAckPending: 1000,
      consumedBy: "reports",
    },
    reportsResults: {
      stream: streams.results.name,
      durable: "reports-results",
      description: "reports: delivery results into the conversion projection",
      filterSubjects: [wildcards.followupResult],
      ackWaitMs: 30 * SECOND,
      maxDeliver: -1,
      maxAckPending: 1000,
      consumedBy: "reports",
    },
    // The plan is the only record of a lead's sequence, variants and holdout: every put to the
    // plans bucket is a message of its stream, consumed like an event.
    reportsPlans: {
      stream: bucketStream("followup_plans"),
      durable: "reports-plans",
      description: "reports: plans (sequence, variants, holdout) into the conversion projection",
      filterSubjects: ["$KV.followup_plans.>"],
      ackWaitMs: 30 * SECOND,
      maxDeliver: -1,
      maxAckPending: 1000,
      consumedBy: "reports",
    },
  } satisfies Record<string, ConsumerSpec>;

  const buckets = {
    leads: {
      bucket: "leads",
      description: "Leads by <tenant>.<leadId>",
      history: 5,
      ttlMs: 0,
      replicas,
      access: {
        writers: ["lead-intake"],
        readers: ["lead-intake", "scheduler", "dispatcher"],
        watchers: [],
      },
    },
    plans: {
      bucket: "followup_plans",
      description: "The scheduler's follow-up plan of each lead, by <tenant>.<leadId>",
      history: 5,
      ttlMs: 0,
      replicas,
      // The scheduler creates the plans of many leads in one atomic batch.
      allowAtomic: true,
      // The dispatcher reads a fired step's plan (due_at, delay, still pending?); reports reads
      // them all when it rebuilds (and consumes their puts, reportsPlans).
      access: {
        writers: ["scheduler"],
        readers: ["scheduler", "dispatcher", "lead-intake", "reports"],
        watchers: [],
      },
    },
    receipts: {
      bucket: "hook_receipts",
      description: "Follow-ups received by lead-intake's hook, once per webhook-id",
      history: 1,
      ttlMs: 30 * DAY,
      replicas,
      access: { writers: ["lead-intake"], readers: ["lead-intake"], watchers: [] },
    },
    sequences: {
      bucket: "sequences",
      description: "Each tenant's follow-up sequences, by <tenant>.<name>",
      history: 5,
      ttlMs: 0,
      replicas,
      // lead-intake serves /v1/sequences; the scheduler reads a tenant's sequences when it plans,
      // and watches the bucket so that an edit reaches the next lead without a read per lead.
      access: { writers: ["lead-intake"], readers: ["lead-intake", "scheduler"], watchers: ["scheduler"] },
    },
    templates: {
      bucket: "templates",
      description: "Each tenant's message templates, by <tenant>.<name>",
      history: 5,
      ttlMs: 0,
      replicas,
      // lead-intake serves /v1/templates (and checks a sequence's steps against them); the
      // dispatcher reads a step's template when it renders the message at delivery.
      access: { writers: ["lead-intake"], readers: ["lead-intake", "dispatcher"], watchers: [] },
    },
    channels: {
      bucket: "channel_settings",
      description:
        "Each tenant's channel settings (providers, webhooks), secrets sealed, by <tenant>.<channel>",
      history: 5,
      ttlMs: 0,
      replicas,
      // lead-intake serves /v1/channels; the dispatcher keeps the settings it sends with in a
      // cache a watch keeps current, and marks a channel the provider refused for good as broken.
      access: {
        writers: ["lead-intake", "dispatcher"],
        readers: ["lead-intake", "dispatcher"],
        watchers: ["dispatcher"],
      },
    },
    suppressions: {
      bucket: "suppressions",
      description: "Addresses each tenant must not contact, by <tenant>.<sha256(channel:address)>",
      history: 1,
      ttlMs: 0,
      replicas,
      // lead-intake adds them (API, one-click unsubscribe, inbound STOP); the dispatcher checks
      // the recipient's key before every send, and adds the ones a provider reports (Twilio 21610).
      access: {
        writers: ["lead-intake", "dispatcher"],
        readers: ["lead-intake", "dispatcher"],
        watchers: [],
      },
    },
    reports: {
      bucket: "reports",
      description: "The conversion projection: one record per lead, counters per sequence and day",
      history: 1,
      ttlMs: 0,
      replicas,
      // A lead's record and the counters it changes are written in one atomic batch.
      allowAtomic: true,
      access: { writers: ["reports"], readers: ["reports"], watchers: [] },
    },
    models: {
      bucket: "models",
      description: "Conversion models promoted from outcomes, by version, and which one is current",
      history: 1,
      ttlMs: 0,
      replicas,
      // lead-intake's train:outcomes promotes, /ops/model/rollback steps back; every copy
      // watches `current` and swaps its scorer without a restart.
      access: { writers: ["lead-intake"], readers: ["lead-intake"], watchers: ["lead-intake"] },
    },
  } satisfies Record<string, BucketSpec>;

  /**
   * Durables of earlier versions that provisioning deletes, so nothing consumes what another
   * consumer now owns: `scheduler-markers` fired markers through followup.due before the
   * dispatcher consumed them itself (two consumers would fire every marker twice).
   */
  const retiredConsumers = [{ stream: streams.timers.name, durable: "scheduler-markers" }] as const;

  return { queue, streams, consumers, buckets, retiredConsumers };
}

export type Topology = ReturnType<typeof topology>;
