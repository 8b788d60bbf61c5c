import type { BucketSpec, ConsumerSpec, StreamSpec, Topology } from "@followup/contracts";
import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  type JetStreamManager,
  jetstreamManager,
  ReplayPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { type NatsConnection, nanos } from "@nats-io/transport-node";
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

/** The settings of `wanted` that `current` (a stream's or consumer's config as the server has it) does not match. */
function changedSettings(current: object, wanted: object): string[] {
  const have = current as Record<string, unknown>;
  return Object.entries(wanted)
    .filter(([k, v]) => JSON.stringify(have[k]) !== JSON.stringify(v))
    .map(([k]) => k);
}

/**
 * Creates the stream, or updates it when its mutable settings differ. Safe to run from
 * every copy of every service at every start.
 */
export async function provisionStream(
  jsm: JetStreamManager,
  spec: StreamSpec,
  logger?: Logger,
): Promise<void> {
  const wanted = streamConfig(spec);
  try {
    const info = await jsm.streams.info(spec.name);
    const changed = changedSettings(info.config, wanted);
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
    await jsm.streams.add(wanted);
    logger?.info({ stream: spec.name }, "stream_created");
  }
}

/** Creates the durable consumer, or updates its mutable settings. */
export async function provisionConsumer(
  jsm: JetStreamManager,
  spec: ConsumerSpec,
  logger?: Logger,
): Promise<void> {
  const wanted = consumerConfig(spec);
  try {
    const info = await jsm.consumers.info(spec.stream, spec.durable);
    const changed = changedSettings(info.config, wanted);
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
    await jsm.consumers.add(spec.stream, wanted);
    logger?.info({ stream: spec.stream, consumer: spec.durable }, "consumer_created");
  }
}

/** Creates the KV bucket when missing (its stream is KV_<bucket>). */
export async function provisionBucket(nc: NatsConnection, spec: BucketSpec, logger?: Logger): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(`KV_${spec.bucket}`);
    return;
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
  }
  await new Kvm(nc).create(spec.bucket, {
    description: spec.description,
    history: spec.history,
    replicas: spec.replicas,
    ...(spec.ttlMs ? { ttl: spec.ttlMs } : {}),
  });
  logger?.info({ bucket: spec.bucket }, "bucket_created");
}

export interface ProvisionSelection {
  streams?: (keyof Topology["streams"])[];
  consumers?: (keyof Topology["consumers"])[];
  buckets?: (keyof Topology["buckets"])[];
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
 * failing the service's start; any other error fails at once.
 */
export async function provisionTopology(
  nc: NatsConnection,
  topology: Topology,
  options: { select?: ProvisionSelection; logger?: Logger; attempts?: number } = {},
): Promise<void> {
  const { logger } = options;
  await retry(
    () => provisionOnce(nc, topology, options.select ?? {}, logger),
    { ...PROVISION_BACKOFF, ...(options.attempts !== undefined ? { attempts: options.attempts } : {}) },
    {
      retryable: isNotAnswering,
      onRetry: (err, attempt, retryInMs) =>
        logger?.warn({ err, attempt, retry_in_ms: retryInMs }, "topology_provisioning_retrying"),
    },
  );
}

async function provisionOnce(
  nc: NatsConnection,
  topology: Topology,
  select: ProvisionSelection,
  logger: Logger | undefined,
): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const streams = select.streams ?? (Object.keys(topology.streams) as (keyof Topology["streams"])[]);
  const consumers = select.consumers ?? (Object.keys(topology.consumers) as (keyof Topology["consumers"])[]);
  const buckets = select.buckets ?? (Object.keys(topology.buckets) as (keyof Topology["buckets"])[]);
  for (const key of streams) await provisionStream(jsm, topology.streams[key], logger);
  for (const key of consumers) await provisionConsumer(jsm, topology.consumers[key], logger);
  for (const key of buckets) await provisionBucket(nc, topology.buckets[key], logger);
}
