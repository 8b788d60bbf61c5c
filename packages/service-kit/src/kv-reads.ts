import { bucketKeySubject, bucketStream } from "@followup/contracts";
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import type { KvEntry } from "@nats-io/kv";
import { isNoMessages } from "./jetstream-errors.js";

/** What a reader of a KV bucket uses of an entry: what @nats-io/kv's KvEntry has of it. */
export type KvRead = Pick<KvEntry, "operation" | "revision" | "value" | "json">;

/** Reads one key's entry (null: never written): a KV bucket, or BatchedKvReads over one. */
export interface KvReader {
  get(key: string): Promise<KvRead | null>;
}

/** Keys read in one request at most (the server answers a multi_last request with at most 1024). */
const MAX_KEYS = 256;
/** Requests in flight at once per bucket; keys asked for meanwhile wait for the next. */
const IN_FLIGHT = 2;

interface Waiting {
  resolve: (entry: KvRead | null) => void;
  reject: (err: unknown) => void;
}

/**
 * KV gets of many keys gathered into batched direct gets (ADR-31 `multi_last`: the last message
 * of each key's subject, in one request and one stream lookup), for a reader that reads a key per
 * message and gets many messages at once: the dispatcher reads a plan and a lead per expiry
 * marker, and in a burst thousands of markers come within a second. A get waits only for the
 * current turn of the event loop (the markers of one pull arrive together), or, while IN_FLIGHT
 * requests are out, until one returns; so a lone get costs what kv.get costs, and under load one
 * request carries up to MAX_KEYS keys.
 *
 * Entries read so are what kv.get returns: the last message of the key's subject, a delete or
 * purge marker as such (its operation), read from the stream's leader as kv.get reads with
 * allow_direct. A request that fails rejects every get it carried (the callers retry as after a
 * failed kv.get).
 */
export class BatchedKvReads implements KvReader {
  readonly #stream: string;
  readonly #bucket: string;
  #waiting = new Map<string, Waiting[]>();
  #scheduled = false;
  #inFlight = 0;

  constructor(
    private readonly jsm: JetStreamManager,
    bucket: string,
    private readonly onBatch?: (keys: number) => void,
  ) {
    this.#bucket = bucket;
    this.#stream = bucketStream(bucket);
  }

  get(key: string): Promise<KvRead | null> {
    return new Promise((resolve, reject) => {
      const waiting = this.#waiting.get(key);
      if (waiting) waiting.push({ resolve, reject });
      else this.#waiting.set(key, [{ resolve, reject }]);
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          this.#pump();
        });
      }
    });
  }

  #pump(): void {
    while (this.#waiting.size > 0 && this.#inFlight < IN_FLIGHT) {
      const batch = new Map<string, Waiting[]>();
      for (const [key, waiting] of this.#waiting) {
        batch.set(key, waiting);
        this.#waiting.delete(key);
        if (batch.size >= MAX_KEYS) break;
      }
      this.#inFlight++;
      void this.#read(batch).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  async #read(batch: Map<string, Waiting[]>): Promise<void> {
    const found = new Map<string, StoredMsg>();
    // Counted as the request is sent, so the sizes come in the order the requests went out.
    this.onBatch?.(batch.size);
    try {
      const messages = await this.jsm.direct.getLastMessagesFor(this.#stream, {
        multi_last: [...batch.keys()].map((key) => bucketKeySubject(this.#bucket, key)),
      });
      for await (const message of messages) found.set(message.subject, message);
    } catch (err) {
      // "No results": none of the keys was ever written.
      if (!isNoMessages(err)) {
        for (const waiting of batch.values()) for (const w of waiting) w.reject(err);
        return;
      }
    }
    for (const [key, waiting] of batch) {
      const message = found.get(bucketKeySubject(this.#bucket, key));
      const entry = message === undefined ? null : kvRead(message);
      for (const w of waiting) w.resolve(entry);
    }
  }
}

/** A key's last message as a KV entry: its operation from the KV-Operation header (none: a PUT). */
function kvRead(message: StoredMsg): KvRead {
  const operation = (message.header?.get("KV-Operation") || "PUT") as KvRead["operation"];
  return {
    operation,
    revision: message.seq,
    value: message.data,
    json: <T>() => message.json<T>(),
  };
}
