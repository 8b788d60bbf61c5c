import {
  bucketStream,
  type ChannelBroken,
  type ChannelSettingsOf,
  ChannelSettingsRecord,
  channelSettingsKey,
  type KnownChannel,
} from "@followup/contracts";
import { isNoMessages, isWrongLastSequence, openSettings, type SealingKeyring } from "@followup/service-kit";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { KV, KvEntry } from "@nats-io/kv";
import type { Logger } from "pino";

/**
 * A tenant's channel settings as the dispatcher sends with them: read from `channel_settings`
 * and opened with CHANNEL_SECRETS_KEY (or an old key). A watch of the bucket keeps a cache of
 * every record current, so a send costs no read; while the watch is not running (starting,
 * restarting after the connection dropped it) each lookup reads the key. lead-intake validated
 * the settings when they were saved: they are used as stored, not judged again.
 */

/** What a lookup finds: the opened settings, none stored, or a record that does not open. */
export type SettingsLookup<C extends KnownChannel> =
  | { found: true; settings: ChannelSettingsOf<C>; broken?: ChannelBroken }
  | { found: false; why: "not_configured" | "unreadable" | "no_key"; detail?: string };

export interface ChannelSettingsSource {
  get<C extends KnownChannel>(tenant: string, channel: C): Promise<SettingsLookup<C>>;
  /** Marks the channel broken in its stored settings (unless they changed since they were read). */
  markBroken(tenant: string, channel: KnownChannel, broken: ChannelBroken): Promise<boolean>;
}

const WATCH_RESTART_MS = 2_000;

type Cached = { revision: number; record: ChannelSettingsRecord | null };

export class ChannelSettingsCache implements ChannelSettingsSource {
  readonly #kv: KV;
  readonly #jsm: JetStreamManager;
  readonly #bucket: string;
  readonly #keyring: SealingKeyring | undefined;
  readonly #log: Logger;
  readonly #cache = new Map<string, Cached>();
  #watching = false;
  #stopped = false;
  #stopWatch: (() => void) | undefined;

  constructor(
    kv: KV,
    readonly options: {
      jsm: JetStreamManager;
      bucket: string;
      keyring: SealingKeyring | undefined;
      log: Logger;
    },
  ) {
    const { jsm, bucket, keyring, log } = options;
    this.#kv = kv;
    this.#jsm = jsm;
    this.#bucket = bucket;
    this.#keyring = keyring;
    this.#log = log.child({ component: "channel-settings" });
  }

  /** Starts the watch; resolves once it has delivered every stored record (or failed to start). */
  async start(): Promise<void> {
    let ready: () => void = () => {};
    const initialised = new Promise<void>((resolve) => {
      ready = resolve;
    });
    void this.#watchLoop(ready);
    await initialised;
  }

  stop(): void {
    this.#stopped = true;
    this.#stopWatch?.();
  }

  async #watchLoop(ready: () => void): Promise<void> {
    while (!this.#stopped) {
      try {
        const iterator = await this.#kv.watch({ key: ">" });
        this.#stopWatch = () => iterator.stop();
        this.#cache.clear();
        // Every stored record comes first; the last of them is the first marked isUpdate. The
        // cache serves once they are in, or at once when the bucket holds nothing to deliver.
        let pending = true;
        if (await this.#isEmpty()) {
          pending = false;
          this.#watching = true;
          ready();
        }
        for await (const entry of iterator) {
          this.#apply(entry);
          if (pending && entry.isUpdate) {
            pending = false;
            this.#watching = true;
            ready();
          }
        }
      } catch (err) {
        if (!this.#stopped) this.#log.warn({ err: (err as Error).message }, "channel_settings_watch_failed");
      }
      this.#watching = false;
      ready();
      if (this.#stopped) return;
      await new Promise((resolve) => setTimeout(resolve, WATCH_RESTART_MS).unref());
    }
  }

  /** Whether the bucket's stream holds no message at all (a direct get, which readers may make). */
  async #isEmpty(): Promise<boolean> {
    try {
      const first = await this.#jsm.direct.getMessage(bucketStream(this.#bucket), {
        seq: 1,
        next_by_subj: `$KV.${this.#bucket}.>`,
      });
      return first === null;
    } catch (err) {
      if (isNoMessages(err)) return true;
      throw err;
    }
  }

  #apply(entry: KvEntry): void {
    const record = entry.operation === "PUT" ? this.#parse(entry) : null;
    this.#cache.set(entry.key, { revision: entry.revision, record });
  }

  #parse(entry: KvEntry): ChannelSettingsRecord | null {
    const parsed = ChannelSettingsRecord.safeParse(entry.json());
    if (parsed.success) return parsed.data;
    this.#log.error({ key: entry.key, revision: entry.revision }, "channel_settings_record_invalid");
    return null;
  }

  async #read(key: string): Promise<Cached | undefined> {
    if (this.#watching) return this.#cache.get(key);
    const entry = await this.#kv.get(key);
    if (entry === null) return undefined;
    return { revision: entry.revision, record: entry.operation === "PUT" ? this.#parse(entry) : null };
  }

  async get<C extends KnownChannel>(tenant: string, channel: C): Promise<SettingsLookup<C>> {
    // The tenant comes from a parsed subject and the channel is typed: the key needs no checking
    // on this path, which every hook call takes.
    const cached = await this.#read(`${tenant}.${channel}`);
    if (!cached?.record) return { found: false, why: "not_configured" };
    const record = cached.record;
    if (Object.keys(record.secrets).length > 0 && this.#keyring === undefined)
      return { found: false, why: "no_key" };
    try {
      const opened = this.#keyring ? openSettings(this.#keyring, record).settings : record.settings;
      return {
        found: true,
        settings: opened as ChannelSettingsOf<C>,
        ...(record.broken ? { broken: record.broken } : {}),
      };
    } catch (err) {
      // Logged with the field and the reason, never the value; the follow-up fails closed.
      this.#log.error({ tenant, channel, err: (err as Error).message }, "channel_secret_unreadable");
      return { found: false, why: "unreadable", detail: (err as Error).message };
    }
  }

  async markBroken(tenant: string, channel: KnownChannel, broken: ChannelBroken): Promise<boolean> {
    const key = channelSettingsKey(tenant, channel);
    const entry = await this.#kv.get(key);
    if (entry === null || entry.operation !== "PUT") return false;
    const record = ChannelSettingsRecord.parse(entry.json());
    if (record.broken) return false;
    try {
      // Only the revision read: settings PUT meanwhile (a new webhook) are not marked.
      await this.#kv.update(key, JSON.stringify({ ...record, broken }), entry.revision);
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      throw err;
    }
  }
}
