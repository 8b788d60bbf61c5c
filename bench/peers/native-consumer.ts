/**
 * The native-schedule peer's worker, run as its own process like the engine's dispatcher: pulls
 * what nats-server's scheduler fired onto `fired.>`, calls the hook (HOOK_CONCURRENCY calls in
 * flight), acks on 2xx and naks with a 1 s delay otherwise.
 *
 *   NATS_URL=... HOOK_URL=... HOOK_SECRET=whsec_... node --import tsx bench/peers/native-consumer.ts
 */
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, nanos } from "@nats-io/transport-node";
import { createHookCaller, type PeerFollowup } from "./hook-call.js";
import { FIRED_CONSUMER, SCHEDULE_STREAM } from "./native-schedule.js";
import { Slots } from "./slots.js";

const concurrency = Number(process.env.HOOK_CONCURRENCY ?? 32);
const nc = await connect({
  servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222",
  name: "native-consumer",
});
const jsm = await jetstreamManager(nc);
await jsm.consumers.add(SCHEDULE_STREAM, {
  durable_name: FIRED_CONSUMER,
  filter_subject: "fired.>",
  ack_policy: AckPolicy.Explicit,
  ack_wait: nanos(30_000),
  max_ack_pending: 256,
});
const hook = createHookCaller({
  url: process.env.HOOK_URL ?? "",
  secret: process.env.HOOK_SECRET ?? "",
  connections: concurrency,
});
const consumer = await jetstream(nc).consumers.get(SCHEDULE_STREAM, FIRED_CONSUMER);
const messages = await consumer.consume({ max_messages: concurrency * 2 });
const slots = new Slots(concurrency);

process.once("SIGTERM", () => {
  void messages.close().then(() => nc.drain().then(() => process.exit(0)));
});
console.log("native-consumer ready");

for await (const message of messages) {
  await slots.acquire();
  const followup = message.json<PeerFollowup>();
  hook
    .call(followup, message.info.deliveryCount)
    .then(
      () => message.ack(),
      () => message.nak(1000),
    )
    .finally(() => slots.release());
}
