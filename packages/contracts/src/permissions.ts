import {
  type BucketAccess,
  type BucketSpec,
  bucketStream,
  type ConsumerSpec,
  SERVICE_IDENTITIES,
  type ServiceIdentity,
  type StreamAccess,
  type StreamSpec,
  type Topology,
} from "./topology.js";

export { bucketStream };

/**
 * Broker permissions derived from the topology: each service may publish, call and read exactly
 * what its `access` and `consumedBy` entries say, so a new stream or bucket cannot be left out
 * of them. In nats-server's terms: a subject list to allow (and to deny) for publish and for
 * subscribe; a request's reply comes back on the identity's own inbox prefix.
 */

/** `tail`: read-only operators (`nats sub`); `provision`: creates and updates the topology. */
export const OPERATOR_IDENTITIES = ["tail", "provision"] as const;
export type OperatorIdentity = (typeof OPERATOR_IDENTITIES)[number];
export type Identity = ServiceIdentity | OperatorIdentity;
export const IDENTITIES: readonly Identity[] = [...SERVICE_IDENTITIES, ...OPERATOR_IDENTITIES];

export interface SubjectPermission {
  allow: string[];
  deny?: string[];
}

export interface Permissions {
  publish: SubjectPermission;
  subscribe: SubjectPermission;
}

const API = "$JS.API";

/**
 * The inbox prefix of an identity (nats.js `inboxPrefix`, NATS_INBOX_PREFIX): replies to its
 * requests, JetStream's included, come back under it, and no other identity may subscribe there.
 */
export function inboxPrefixOf(identity: Identity): string {
  return `_INBOX.${identity}`;
}

/** The subject a KV bucket stores a key's values on: what a put publishes to. */
export function bucketKeySubject(bucket: string, key: string): string {
  return `$KV.${bucket}.${key}`;
}

/** What one service touches: the streams, consumers and buckets it must find provisioned at start. */
export interface IdentityScope {
  streams: (keyof Topology["streams"])[];
  consumers: (keyof Topology["consumers"])[];
  buckets: (keyof Topology["buckets"])[];
}

export function scopeOf(identity: ServiceIdentity, topo: Topology): IdentityScope {
  const keys = <T extends object>(o: T) => Object.keys(o) as (keyof T)[];
  const has = (access: StreamAccess | BucketAccess): boolean =>
    Object.values(access).some((who: readonly ServiceIdentity[] | StreamAccess["subjectWriters"]) =>
      Array.isArray(who)
        ? who.includes(identity)
        : Object.values(who ?? {}).some((w) => w.includes(identity)),
    );
  const consumers = keys(topo.consumers).filter((k) => consumer(topo, k).consumedBy === identity);
  const consumedStreams = new Set<string>(consumers.map((k) => consumer(topo, k).stream));
  const streams = keys(topo.streams).filter((k) => {
    const spec = stream(topo, k);
    return consumedStreams.has(spec.name) || has(spec.access);
  });
  const buckets = keys(topo.buckets).filter((k) => has(bucket(topo, k).access));
  return { streams, consumers, buckets };
}

// The topology's entries as their general spec types (topology() infers narrower literals).
const stream = (topo: Topology, key: keyof Topology["streams"]): StreamSpec => topo.streams[key];
const consumer = (topo: Topology, key: keyof Topology["consumers"]): ConsumerSpec => topo.consumers[key];
const bucket = (topo: Topology, key: keyof Topology["buckets"]): BucketSpec => topo.buckets[key];

function servicePermissions(identity: ServiceIdentity, topo: Topology): Permissions {
  const scope = scopeOf(identity, topo);
  const publish = new Set<string>([`${API}.INFO`]);
  const subscribe = new Set<string>([`${inboxPrefixOf(identity)}.>`]);
  for (const key of scope.streams) {
    const { name, subjects, access, republish } = stream(topo, key);
    if (access.tailers.includes(identity)) {
      for (const subject of [...subjects, ...(republish ? [republish.dest] : [])]) subscribe.add(subject);
    }
    // Every stream in scope: the start-up check reads its info.
    publish.add(`${API}.STREAM.INFO.${name}`);
    if (access.writers.includes(identity)) for (const subject of subjects) publish.add(subject);
    for (const [subject, writers] of Object.entries(access.subjectWriters ?? {})) {
      if (writers.includes(identity)) publish.add(subject);
    }
    if (access.readers.includes(identity)) for (const s of readSubjects(name)) publish.add(s);
    if (access.purgers.includes(identity)) publish.add(`${API}.STREAM.PURGE.${name}`);
    if (access.deleters.includes(identity)) publish.add(`${API}.STREAM.MSG.DELETE.${name}`);
  }
  for (const key of scope.consumers) {
    const { stream: name, durable } = consumer(topo, key);
    publish.add(`${API}.CONSUMER.INFO.${name}.${durable}`);
    publish.add(`${API}.CONSUMER.MSG.NEXT.${name}.${durable}`);
    // Acks, naks, terms and in-progress: the reply subject of each message delivered.
    publish.add(`$JS.ACK.${name}.${durable}.>`);
  }
  for (const key of scope.buckets) {
    const { bucket: name, access } = bucket(topo, key);
    const kvStream = bucketStream(name);
    publish.add(`${API}.STREAM.INFO.${kvStream}`);
    if (access.writers.includes(identity)) publish.add(bucketKeySubject(name, ">"));
    if (access.readers.includes(identity)) for (const s of readSubjects(kvStream)) publish.add(s);
    if (access.watchers.includes(identity)) for (const s of watchSubjects(kvStream)) publish.add(s);
  }
  return { publish: { allow: [...publish] }, subscribe: { allow: [...subscribe] } };
}

/** Reading a stream's stored messages: a get by sequence or subject, direct or through the leader. */
function readSubjects(stream: string): string[] {
  return [`${API}.STREAM.MSG.GET.${stream}`, `${API}.DIRECT.GET.${stream}`, `${API}.DIRECT.GET.${stream}.>`];
}

/**
 * Watching a bucket (nats.js `kv.watch()`): an ordered push consumer of the watcher's own, created
 * with its name (and its filter, when it has one) in the subject and re-created after a gap, its
 * info read, deleted when the watch stops; the server's flow-control requests are answered on
 * `$JS.FC.<stream>.>`. Deliveries come to the watcher's inbox. Only on the bucket's own stream.
 */
function watchSubjects(stream: string): string[] {
  return [
    `${API}.CONSUMER.CREATE.${stream}.*`,
    `${API}.CONSUMER.CREATE.${stream}.*.>`,
    `${API}.CONSUMER.INFO.${stream}.*`,
    `${API}.CONSUMER.DELETE.${stream}.*`,
    `$JS.FC.${stream}.>`,
  ];
}

/** Operators watching the engine: every family of subjects the topology stores or republishes. */
function tailPermissions(topo: Topology): Permissions {
  const families = new Set<string>();
  for (const spec of Object.values(topo.streams) as StreamSpec[]) {
    const subjects = [...spec.subjects, ...(spec.republish ? [spec.republish.dest] : [])];
    for (const subject of subjects) families.add(`${subject.split(".")[0]}.>`);
  }
  return { publish: { allow: [], deny: [">"] }, subscribe: { allow: [...families] } };
}

/** Creates and updates the topology's streams, consumers and buckets; touches no message. */
function provisionPermissions(topo: Topology): Permissions {
  const publish = new Set<string>([`${API}.INFO`]);
  const streams = [
    ...Object.values(topo.streams).map((s) => s.name),
    ...Object.values(topo.buckets).map((b) => bucketStream(b.bucket)),
  ];
  for (const name of streams) {
    for (const op of ["INFO", "CREATE", "UPDATE"]) publish.add(`${API}.STREAM.${op}.${name}`);
  }
  for (const { stream, durable } of Object.values(topo.consumers)) {
    publish.add(`${API}.CONSUMER.INFO.${stream}.${durable}`);
    // nats.js names the filter subject in the create subject when there is one filter.
    publish.add(`${API}.CONSUMER.CREATE.${stream}.${durable}`);
    publish.add(`${API}.CONSUMER.CREATE.${stream}.${durable}.>`);
    publish.add(`${API}.CONSUMER.DURABLE.CREATE.${stream}.${durable}`);
  }
  // Durables of earlier versions, deleted so that nothing consumes them any more.
  for (const { stream, durable } of topo.retiredConsumers) {
    publish.add(`${API}.CONSUMER.INFO.${stream}.${durable}`);
    publish.add(`${API}.CONSUMER.DELETE.${stream}.${durable}`);
  }
  return {
    publish: { allow: [...publish] },
    subscribe: { allow: [`${inboxPrefixOf("provision")}.>`] },
  };
}

/** The broker permissions of an identity, in nats-server's terms. */
export function permissionsFor(identity: Identity, topo: Topology): Permissions {
  if (identity === "tail") return tailPermissions(topo);
  if (identity === "provision") return provisionPermissions(topo);
  return servicePermissions(identity, topo);
}

export interface BrokerUser {
  identity: Identity;
  /** The user's password, or a bcrypt hash of it (nats-server accepts both). */
  password: string;
}

/** A user without permissions: for a test harness's own probes only, never in a shipped config. */
export interface UnrestrictedUser {
  user: string;
  password: string;
}

/**
 * The nats-server `authorization { users = [...] }` block: one user per identity, named after it,
 * with its permissions. There is no `no_auth_user`, so a client without credentials is refused.
 * `unrestricted` adds users that may do anything: the tests' admin (reading consumer state,
 * recording every event); nothing shipped passes it.
 */
export function authorizationConfig(
  users: readonly BrokerUser[],
  topo: Topology,
  unrestricted: readonly UnrestrictedUser[] = [],
): string {
  const seen = new Set<string>();
  const entries = users.map(({ identity, password }) => {
    if (!IDENTITIES.includes(identity)) {
      throw new Error(`identity must be one of ${IDENTITIES.join(", ")} (got ${JSON.stringify(identity)})`);
    }
    if (seen.has(identity)) throw new Error(`identity ${identity} is given twice`);
    seen.add(identity);
    if (password.length === 0) throw new Error(`password of ${identity} must not be empty`);
    const { publish, subscribe } = permissionsFor(identity, topo);
    return [
      "    {",
      `      user: ${JSON.stringify(identity)}`,
      `      password: ${JSON.stringify(password)}`,
      "      permissions: {",
      `        publish: ${permissionBlock(publish)}`,
      `        subscribe: ${permissionBlock(subscribe)}`,
      "      }",
      "    }",
    ].join("\n");
  });
  for (const { user, password } of unrestricted) {
    if (IDENTITIES.includes(user as Identity) || seen.has(user))
      throw new Error(`user ${user} is given twice`);
    seen.add(user);
    if (password.length === 0) throw new Error(`password of ${user} must not be empty`);
    entries.push(`    { user: ${JSON.stringify(user)}, password: ${JSON.stringify(password)} }`);
  }
  return `authorization {\n  users = [\n${entries.join("\n")}\n  ]\n}\n`;
}

function permissionBlock(permission: SubjectPermission): string {
  const parts: string[] = [];
  // An empty allow list would mean "no allow list", i.e. everything: refuse instead.
  const deny =
    permission.allow.length === 0 ? [...new Set([...(permission.deny ?? []), ">"])] : permission.deny;
  if (permission.allow.length > 0) parts.push(`allow: ${subjectList(permission.allow)}`);
  if (deny && deny.length > 0) parts.push(`deny: ${subjectList(deny)}`);
  return `{ ${parts.join(", ")} }`;
}

function subjectList(subjects: readonly string[]): string {
  return `[${subjects.map((s) => JSON.stringify(s)).join(", ")}]`;
}
