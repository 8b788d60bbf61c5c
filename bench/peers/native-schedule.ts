import { type JetStreamClient, jetstreamManager, StorageType } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { followupBody, followupTail } from "../followups.js";
import { inWindow } from "../window.js";
import type { PeerFollowup } from "./hook-call.js";

/**
 * nats-server's own scheduler (2.12+): a message on `sched.<tail>` with
 * `Nats-Schedule: @at <RFC3339>` and `Nats-Schedule-Target: fired.<tail>` is published by the
 * server onto `fired.<tail>` at that instant; the stream needs `allow_msg_schedules`. The
 * consumer (native-consumer.ts) reads `fired.>` and calls the hook.
 */
export const SCHEDULE_STREAM = "NATIVE_SCHEDULES";
export const FIRED_CONSUMER = "native-consumer";

export async function provisionScheduleStream(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: SCHEDULE_STREAM,
    subjects: ["sched.>", "fired.>"],
    storage: StorageType.File,
    num_replicas: 1,
    allow_msg_schedules: true,
  });
}

export function publishSchedule(js: JetStreamClient, followup: PeerFollowup): Promise<unknown> {
  const tail = followupTail(followup);
  return js.publish(`sched.${tail}`, followupBody(followup), {
    schedule: { specification: new Date(followup.due_at), target: `fired.${tail}` },
  });
}

/** Publishes every schedule once; resolves with the elapsed ms from first publish to last ack. */
export function publishSchedules(
  js: JetStreamClient,
  followups: (index: number) => PeerFollowup,
  count: number,
  window: number,
): Promise<number> {
  return inWindow(count, window, (i) => publishSchedule(js, followups(i)));
}
