/**
 * The intake peer: the least a JetStream-backed HTTP gateway can do. One fastify route,
 * `POST /v1/lead`, that publishes the body to JetStream and answers once the publish is
 * acknowledged: no validation, no enrichment, no scoring, no KV write. lead-intake is measured
 * against it, so the ratio is the price of everything lead-intake does beyond that.
 *
 *   NATS_URL=... PORT=... node --import tsx bench/peers/bare-intake.ts
 */
import { randomUUID } from "node:crypto";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import Fastify from "fastify";

const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222", name: "bare-intake" });
const js = jetstream(nc);
const app = Fastify({ logger: false });

app.post("/v1/lead", async (request, reply) => {
  const leadId = randomUUID();
  await js.publish(
    `lead.scored.bench.${leadId}`,
    JSON.stringify({ lead_id: leadId, created_at: new Date().toISOString(), lead: request.body }),
  );
  return reply.code(201).send({ ok: true, data: { lead_id: leadId } });
});
app.get("/readyz", async () => ({ ok: true }));

await app.listen({ host: "127.0.0.1", port: Number(process.env.PORT ?? 0) });
process.once("SIGTERM", () => {
  void app.close().then(() => nc.drain().then(() => process.exit(0)));
});
console.log("bare-intake ready");
