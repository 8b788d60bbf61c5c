import { TEST_ADMIN, waitFor } from "@followup/nats-harness";
import { connect, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";

/** One message seen by a core-NATS subscription, as `nats sub` would show it. */
export interface RecordedMessage {
  /** Arrival order across every subject the recorder listens on, from 0. */
  index: number;
  subject: string;
  /** Epoch ms when it arrived here. */
  receivedAt: number;
  /** Header name -> values (empty when the message has none). */
  headers: Record<string, string[]>;
  data: Uint8Array;
  /** The body as text ("" for a headers-only message). */
  text: string;
}

/** The first header value of a recorded message, or undefined. */
export function headerOf(message: RecordedMessage, name: string): string | undefined {
  const key = Object.keys(message.headers).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : message.headers[key]?.[0];
}

/**
 * A plain core-NATS subscription on the engine's subjects (`lead.>` and `followup.>` by
 * default): what an operator sees with `nats sub 'lead.>'`. Streams, KV and JetStream API
 * traffic are not on those subjects, so only events (and the republished `followup.fired.*`
 * headers) are recorded. Create with {@link recordEvents}.
 */
export class EventRecorder {
  readonly messages: RecordedMessage[] = [];
  readonly #nc: NatsConnection;
  readonly #subscriptions: Subscription[] = [];

  constructor(nc: NatsConnection) {
    this.#nc = nc;
  }

  /** Subscribes and waits until the server has registered the subscriptions. */
  async listen(subjects: string[]): Promise<void> {
    for (const subject of subjects) {
      this.#subscriptions.push(
        this.#nc.subscribe(subject, {
          callback: (err, msg) => {
            if (!err) this.#add(msg);
          },
        }),
      );
    }
    await this.#nc.flush();
  }

  /** Messages whose subject has this kind (`lead.scored`, `followup.fired`, ...). */
  ofKind(kind: string): RecordedMessage[] {
    return this.messages.filter((m) => m.subject.startsWith(`${kind}.`));
  }

  /** Every message of one lead (its id is the subject's fourth token), in arrival order. */
  forLead(leadId: string): RecordedMessage[] {
    return this.messages.filter((m) => m.subject.split(".")[3] === leadId);
  }

  /** Waits until `probe(messages)` is truthy, and resolves with its value. */
  waitFor<T>(probe: (messages: RecordedMessage[]) => T, description: string, timeoutMs = 15_000) {
    return waitFor(() => probe(this.messages), { description, timeoutMs });
  }

  /** Unsubscribes and closes its connection. Idempotent. */
  async stop(): Promise<void> {
    if (this.#nc.isClosed()) return;
    for (const sub of this.#subscriptions) sub.unsubscribe();
    await this.#nc.close();
  }

  #add(msg: Msg): void {
    const headers: Record<string, string[]> = {};
    if (msg.headers) for (const [name, values] of msg.headers) headers[name] = [...values];
    this.messages.push({
      index: this.messages.length,
      subject: msg.subject,
      receivedAt: Date.now(),
      headers,
      data: msg.data,
      text: msg.data.length > 0 ? msg.string() : "",
    });
  }
}

/** The subjects the engine publishes on, for a recorder that sees everything an operator can tail. */
export const ENGINE_SUBJECTS = ["lead.>", "followup.>"];

/**
 * Connects to `natsUrl` (as `auth`: an engine's `as("tail")`, say; by default the tests' admin)
 * and records every message on `subjects` (default: the engine's).
 */
export async function recordEvents(
  natsUrl: string,
  subjects: string[] = ENGINE_SUBJECTS,
  auth: { user: string; pass: string; inboxPrefix?: string } = TEST_ADMIN,
): Promise<EventRecorder> {
  const nc = await connect({ servers: natsUrl, name: "test-event-recorder", ...auth });
  const recorder = new EventRecorder(nc);
  await recorder.listen(subjects);
  return recorder;
}
