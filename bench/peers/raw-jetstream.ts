import { type JetStreamClient, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/transport-node";
import { followupBody, followupTail } from "../followups.js";
import { inWindow } from "../window.js";
import type { PeerFollowup } from "./hook-call.js";

/**
 * The ceiling: a plain JetStream publish per follow-up from one Node process, into a file-backed
 * stream with no TTL, no dedupe and no consumer. Nothing that publishes once per follow-up from
 * one process can go faster on the same server.
 */
export const RAW_STREAM = "RAW_FOLLOWUPS";

export async function provisionRawStream(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: RAW_STREAM,
    subjects: ["raw.>"],
    storage: StorageType.File,
    num_replicas: 1,
    duplicate_window: nanos(0),
  });
}

/** Publishes every follow-up once; resolves with the elapsed ms from first publish to last ack. */
export function publishRaw(
  js: JetStreamClient,
  followups: (index: number) => PeerFollowup,
  count: number,
  window: number,
): Promise<number> {
  return inWindow(count, window, (i) => {
    const followup = followups(i);
    return js.publish(`raw.${followupTail(followup)}`, followupBody(followup));
  });
}
