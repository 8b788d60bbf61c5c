import {
  type BucketSpec,
  bucketStream,
  type ConsumerSpec,
  type ServiceIdentity,
  type StreamSpec,
  scopeOf,
  type Topology,
} from "@followup/contracts";
import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  type JetStreamManager,
  jetstreamManager,
  ReplayPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { type NatsConnection, nanos, PermissionViolationError } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { type Backoff, retry } from "./backoff.js";
import { isConsumerNotFound, isNotAnswering, isStreamNotFound } from "./jetstream-errors.js";

/** The JetStream stream configuration of a spec. */
export function streamConfig(spec: StreamSpec): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    description: spec.description,
    subjects: spec.subjects,
    retention: spec.retention,
    storage: StorageType.File,
    num_replicas: spec.replicas,
    max_age: nanos(spec.maxAgeMs),
    duplicate_window: nanos(spec.duplicateWindowMs),
    allow_direct: true,
    ...(spec.allowMsgTtl ? { allow_msg_ttl: true } : {}),
    ...(spec.subjectDeleteMarkerTtlMs
      ? { subject_delete_marker_ttl: nanos(spec.subjectDeleteMarkerTtlMs) }
      : {}),
    ...(spec.maxMsgsPerSubject ? { max_msgs_per_subject: spec.maxMsgsPerSubject } : {}),
    ...(spec.allowAtomic ? { allow_atomic: true } : {}),
    ...(spec.republish
      ? {
          republish: {
            src: spec.republish.src,
            dest: spec.republish.dest,
            headers_only: spec.republish.headersOnly,
          },
        }
      : {}),
  };
}

/** The JetStream consumer configuration of a spec: durable, pull, explicit acks. */
export function consumerConfig(spec: ConsumerSpec): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: spec.durable,
    description: spec.description,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    ack_wait: nanos(spec.ackWaitMs),
    max_deliver: spec.maxDeliver,
    max_ack_pending: spec.maxAckPending,
    ...(spec.filterSubjects.length === 1
      ? { filter_subject: spec.filterSubjects[0] }
      : { filter_subjects: spec.filterSubjects }),
  };
}

/**
 * A stream, consumer or bucket is missing or differs from the topology, and this connection
 * only checks (NATS_PROVISION=false): provisioning has not run yet, or ran for another version.
 */
export class TopologyNotProvisionedError extends Error {
  constructor(what: string) {
    super(`${what}; provision the topology first (pnpm provision, as the provision identity)`);
    this.name = "TopologyNotProvisionedError";
  }
}

/** Options of each provisioning step: `checkOnly` verifies and never creates or updates. */
interface StepOptions {
  logger?: Logger | undefined;
  checkOnly?: boolean | undefined;
}

/** The settings of `wanted` that `current` does not have; with `checkOnly`, any is an error. */
function differences(
  what: string,
  wanted: object,
  current: object,
  checkOnly: boolean | undefined,
): string[] {
  const have = current as Record<string, unknown>;
  const changed = Object.entries(wanted)
    .filter(([k, v]) => JSON.stringify(have[k]) !== JSON.stringify(v))
    .map(([k]) => k);
  if (checkOnly && changed.length > 0) {
    throw new TopologyNotProvisionedError(`${what} differs from the topology in ${changed.join(", ")}`);
  }
  return changed;
}

/**
 * Creates the stream, or updates it when its mutable settings differ. Safe to run from
 * every copy of every service at every start.
 */
export async function provisionStream(
  jsm: JetStreamManager,
  spec: StreamSpec,
  options: StepOptions = {},
): Promise<void> {
  const { logger, checkOnly } = options;
  const wanted = streamConfig(spec);
  try {
    const info = await jsm.streams.info(spec.name);
    const changed = differences(`stream ${spec.name}`, wanted, info.config, checkOnly);
    if (changed.length === 0) return;
    if (info.config.retention !== wanted.retention) {
      throw new Error(
        `stream ${spec.name} exists with retention ${String(info.config.retention)}, expected ${wanted.retention}; ` +
          "retention cannot change in place: move its messages and delete the stream",
      );
    }
    await jsm.streams.update(spec.name, { ...info.config, ...wanted });
    logger?.info({ stream: spec.name, changed }, "stream_updated");
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
    if (checkOnly) throw new TopologyNotProvisionedError(`stream ${spec.name} does not exist`);
    await jsm.streams.add(wanted);
    logger?.info({ stream: spec.name }, "stream_created");
  }
}

/** Creates the durable consumer, or updates its mutable settings. */
export async function provisionConsumer(
  jsm: JetStreamManager,
  spec: ConsumerSpec,
  options: StepOptions = {},
): Promise<void> {
  const { logger, checkOnly } = options;
  const wanted = consumerConfig(spec);
  try {
    const info = await jsm.consumers.info(spec.stream, spec.durable);
    const changed = differences(`consumer ${spec.stream}/${spec.durable}`, wanted, info.config, checkOnly);
    if (changed.length === 0) return;
    await jsm.consumers.update(spec.stream, spec.durable, {
      description: wanted.description,
      ack_wait: wanted.ack_wait,
      max_deliver: wanted.max_deliver,
      max_ack_pending: wanted.max_ack_pending,
      ...(wanted.filter_subject ? { filter_subject: wanted.filter_subject } : {}),
      ...(wanted.filter_subjects ? { filter_subjects: wanted.filter_subjects } : {}),
    });
    logger?.info({ stream: spec.stream, consumer: spec.durable, changed }, "consumer_updated");
  } catch (err) {
    if (!isConsumerNotFound(err)) throw err;
    if (checkOnly) {
      throw new TopologyNotProvisionedError(`consumer ${spec.stream}/${spec.durable} does not exist`);
    }
    await jsm.consumers.add(spec.stream, wanted);
    logger?.info({ stream: spec.stream, consumer: spec.durable }, "consumer_created");
  }
}

/**
 * Deletes a durable an earlier version used and this one replaced (topology.retiredConsumers),
 * so that copies of that version still running stop consuming; gone already is fine. Never in
 * check-only mode: a service identity may not delete consumers, `pnpm provision` does it.
 */
export async function retireConsumer(
  jsm: JetStreamManager,
  retired: { stream: string; durable: string },
  options: StepOptions = {},
): Promise<void> {
  if (options.checkOnly) return;
  try {
    await jsm.consumers.delete(retired.stream, retired.durable);
    options.logger?.info({ stream: retired.stream, consumer: retired.durable }, "retired_consumer_deleted");
  } catch (err) {
    if (!isConsumerNotFound(err) && !isStreamNotFound(err)) throw err;
  }
}

/**
 * Creates the KV bucket when missing (its stream is KV_<bucket>), and gives its stream the
 * settings the KV client does not set: `allow_atomic`, also on a bucket created before it.
 */
export async function provisionBucket(
  nc: NatsConnection,
  spec: BucketSpec,
  options: StepOptions = {},
): Promise<void> {
  const { logger, checkOnly } = options;
  const jsm = await jetstreamManager(nc);
  const name = bucketStream(spec.bucket);
  const wanted: Partial<StreamConfig> = spec.allowAtomic ? { allow_atomic: true } : {};
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(name);
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
    if (checkOnly) throw new TopologyNotProvisionedError(`bucket ${spec.bucket} does not exist`);
    await new Kvm(nc).create(spec.bucket, {
      description: spec.description,
      history: spec.history,
      replicas: spec.replicas,
      ...(spec.ttlMs ? { ttl: spec.ttlMs } : {}),
    });
    logger?.info({ bucket: spec.bucket }, "bucket_created");
    info = await jsm.streams.info(name);
  }
  const changed = differences(`bucket ${spec.bucket}`, wanted, info.config, checkOnly);
  if (changed.length === 0) return;
  await jsm.streams.update(name, { ...info.config, ...wanted });
  logger?.info({ bucket: spec.bucket, changed }, "bucket_updated");
}

export interface ProvisionSelection {
  streams?: (keyof Topology["streams"])[];
  consumers?: (keyof Topology["consumers"])[];
  buckets?: (keyof Topology["buckets"])[];
}

export interface ProvisionOptions {
  /** What to provision (all of the topology by default). */
  select?: ProvisionSelection;
  logger?: Logger;
  /** How many times a transient failure is tried (default 5). */
  attempts?: number;
  /** Only verify that the selection exists as the topology says; never create or update. */
  checkOnly?: boolean;
}

/**
 * How often provisioning asks a JetStream that does not answer in time: 1, 2, 4, 4 s between
 * five attempts (about the 10 s the linear 1-4 s pauses gave before the shared back-off).
 */
export const PROVISION_BACKOFF: Backoff = { baseMs: 1_000, maxMs: 4_000, attempts: 5 };

/**
 * Provisions what a service needs of the topology (all of it by default). Every service
 * provisions what it touches, so they can start in any order. A JetStream that does not answer
 * in time (a cluster still electing the leaders of streams another service just created, a
 * server still starting) is asked again, up to `attempts` times (PROVISION_BACKOFF), instead of
 * failing the service's start; so is, with `checkOnly`, a topology not provisioned yet. Any
 * other error fails at once; a permissions violation says which setting to change.
 */
export async function provisionTopology(
  nc: NatsConnection,
  topology: Topology,
  options: ProvisionOptions = {},
): Promise<void> {
  const { logger } = options;
  const step = { logger, checkOnly: options.checkOnly };
  try {
    await retry(
      () => provisionOnce(nc, topology, options.select ?? {}, step),
      { ...PROVISION_BACKOFF, ...(options.attempts !== undefined ? { attempts: options.attempts } : {}) },
      {
        retryable: (err) => err instanceof TopologyNotProvisionedError || isNotAnswering(err),
        onRetry: (err, attempt, retryInMs) =>
          logger?.warn({ err, attempt, retry_in_ms: retryInMs }, "topology_provisioning_retrying"),
      },
    );
  } catch (err) {
    if (!isPermissionViolation(err)) throw err;
    throw new Error(
      `this NATS identity may not ${options.checkOnly ? "check" : "provision"} the topology (${(err as Error).message}); ` +
        "a service identity runs with NATS_PROVISION=false after `pnpm provision`",
      { cause: err },
    );
  }
}

/**
 * What a service does with the topology at start. NATS_PROVISION=true (the default, for an
 * unrestricted connection): provision all of it. false (a service identity, which may not create
 * streams): check that what `identity` uses exists, waiting a little for `pnpm provision`.
 */
export function prepareTopology(
  nc: NatsConnection,
  topology: Topology,
  options: { identity: ServiceIdentity; provision: boolean; logger?: Logger; attempts?: number },
): Promise<void> {
  const { identity, provision, ...rest } = options;
  if (provision) return provisionTopology(nc, topology, rest);
  return provisionTopology(nc, topology, { ...rest, checkOnly: true, select: scopeOf(identity, topology) });
}

async function provisionOnce(
  nc: NatsConnection,
  topology: Topology,
  select: ProvisionSelection,
  step: StepOptions,
): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const streams = select.streams ?? (Object.keys(topology.streams) as (keyof Topology["streams"])[]);
  const consumers = select.consumers ?? (Object.keys(topology.consumers) as (keyof Topology["consumers"])[]);
  const buckets = select.buckets ?? (Object.keys(topology.buckets) as (keyof Topology["buckets"])[]);
  for (const key of streams) await provisionStream(jsm, topology.streams[key], step);
  // Before the consumers: a consumer may read a bucket's stream (reports reads the plans').
  for (const key of buckets) await provisionBucket(nc, topology.buckets[key], step);
  for (const key of consumers) await provisionConsumer(jsm, topology.consumers[key], step);
  const provisioned = new Set<string>(streams.map((key) => topology.streams[key].name));
  for (const retired of topology.retiredConsumers) {
    if (provisioned.has(retired.stream)) await retireConsumer(jsm, retired, step);
  }
}

/** The server refused a subject to this connection (the error, or one it was caused by). */
export function isPermissionViolation(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof PermissionViolationError) return true;
  }
  return false;
}
