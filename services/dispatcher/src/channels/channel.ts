import type { FollowupDueData, SendWindow } from "@followup/contracts";
import type { Classification } from "../classify.js";

/** One delivery attempt as a channel sees it. */
export interface ChannelFollowup {
  tenant: string;
  due: FollowupDueData;
  /** 1 for the first attempt; counts redeliveries after a crash too. */
  attempt: number;
  /** `<tenant>:<leadId>:<step>`, the same on every attempt and replay: receivers drop duplicates by it. */
  idempotencyKey: string;
  /** Aborted when a shutdown can wait no longer for the call. */
  signal?: AbortSignal;
}

/** What a channel answers: its classification, and what the receiver said, for results and dead letters. */
export interface ChannelAnswer {
  classification: Classification;
  /** The receiver's status, or null when none was received (timeout, connection error). */
  statusCode: number | null;
  /** Why it was not delivered; absent when delivered. */
  error?: string;
  /** The receiver's `Retry-After`, in milliseconds from now, when it sent one. */
  retryAfterMs?: number;
  /** The provider that was called (twilio, sendgrid, smtp, slack); absent for the hook. */
  provider?: string;
  /** How long the provider's call took (the channel's own reads and rendering excluded). */
  providerDurationMs?: number;
  /** The provider's id of the message sent. */
  providerMessageId?: string;
  /** Why it failed for good or was suppressed (invalid_recipient, opted_out, suppressed, ...). */
  reason?: string;
  /** Hours a retry must land in (SMS send hours), read in `zone` (the recipient's, when known). */
  retryWindow?: { windows: SendWindow[]; zone?: string };
}

/**
 * A way to deliver a follow-up: the HTTP hook now, SMS, e-mail or Slack later. A channel never
 * throws for a failed delivery; it classifies it. Retries, dead letters and results are the
 * consumer's business, so a new channel is one new implementation and one registry entry.
 */
export interface Channel {
  /** The name due follow-ups carry in their `channel` field. */
  readonly name: string;
  /** Calls in flight at most, across this process. */
  readonly concurrency: number;
  send(followup: ChannelFollowup): Promise<ChannelAnswer>;
  /** Lets calls in flight finish, then releases connections. */
  close(): Promise<void>;
  /** Abandons calls in flight: for a shutdown that can wait no longer. */
  destroy?(): Promise<void>;
}

/** Channels by name. */
export class ChannelRegistry {
  readonly #channels = new Map<string, Channel>();

  register(channel: Channel): this {
    if (this.#channels.has(channel.name))
      throw new Error(`channel ${JSON.stringify(channel.name)} registered twice`);
    this.#channels.set(channel.name, channel);
    return this;
  }

  get(name: string): Channel | undefined {
    return this.#channels.get(name);
  }

  names(): string[] {
    return [...this.#channels.keys()];
  }

  /** Closes every channel; `force` abandons calls still in flight. */
  async closeAll(force = false): Promise<void> {
    await Promise.allSettled(
      [...this.#channels.values()].map((channel) =>
        force && channel.destroy ? channel.destroy() : channel.close(),
      ),
    );
  }
}
