import type { ConsumerSpec } from "@followup/contracts";
import { backoffDelayMs, type Logger, pause, type Readiness } from "@followup/service-kit";
import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { InvalidMessageError, projectionEvent } from "./events.js";
import type { ReportsMetrics } from "./metrics.js";
import type { ProjectionEvent } from "./projection.js";
import type { ProjectionStore } from "./store.js";

/**
 * The projection's durables (lead events, results, plans), each pulled in batches. A batch's
 * events go to the store in one call; only when it has committed are they acked, so a crash
 * redelivers them and the store's records make the redelivery change nothing. The copies of
 * one process take turns at the store (a lock), so they do not make each other's batches fail.
 */

const PULL_EXPIRES_MS = 2_000;
const FAILURE_BACKOFF = { baseMs: 500, maxMs: 15_000 };

export interface ProjectionConsumerDeps {
  js: JetStreamClient;
  specs: readonly ConsumerSpec[];
  store: ProjectionStore;
  batchSize: number;
  metrics: ReportsMetrics;
  readiness: Readiness;
  logger: Logger;
}

export interface ProjectionConsumers {
  stop(): Promise<void>;
}

/** A lock: one store call at a time in this process. */
function serial() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(work: () => Promise<T>): Promise<T> => {
    const run = tail.then(work, work);
    tail = run.catch(() => undefined);
    return run;
  };
}

export async function startProjectionConsumers(deps: ProjectionConsumerDeps): Promise<ProjectionConsumers> {
  let stopping = false;
  const exclusive = serial();
  const consumers = await Promise.all(
    deps.specs.map((spec) => deps.js.consumers.get(spec.stream, spec.durable)),
  );
  deps.readiness.set("consumer", true);
  const loops = deps.specs.map(async (spec, i) => {
    const consumer = consumers[i]!;
    for (let failures = 0; !stopping; ) {
      const pulled: JsMsg[] = [];
      try {
        const batch = await consumer.fetch({ max_messages: deps.batchSize, expires: PULL_EXPIRES_MS });
        for await (const msg of batch) pulled.push(msg);
        if (pulled.length === 0) continue;
        const events: ProjectionEvent[] = [];
        const settled: JsMsg[] = [];
        for (const msg of pulled) {
          try {
            const event = projectionEvent(msg.subject, msg.data, msg.headers?.get("KV-Operation"));
            if (event !== null) events.push(event);
            settled.push(msg);
          } catch (err) {
            if (!(err instanceof InvalidMessageError)) throw err;
            deps.logger.error({ err, subject: msg.subject, consumer: spec.durable }, "reports_invalid_event");
            deps.metrics.invalidEvents.inc({ consumer: spec.durable });
            msg.term(err.message);
          }
        }
        if (events.length > 0) {
          const changed = await exclusive(() => deps.store.apply(events));
          deps.metrics.leadsChanged.inc(changed);
        }
        deps.metrics.eventsApplied.inc({ consumer: spec.durable }, settled.length);
        for (const msg of settled) msg.ack();
        failures = 0;
        deps.readiness.set("consumer", true);
      } catch (err) {
        failures += 1;
        const delay = backoffDelayMs(failures, FAILURE_BACKOFF);
        deps.logger.error(
          { err, consumer: spec.durable, failures, retry_in_ms: delay },
          "reports_batch_failed",
        );
        deps.readiness.set("consumer", false, `${spec.durable}: ${(err as Error).message}`);
        for (const msg of pulled) msg.nak(delay);
        await pause(delay);
      }
    }
  });
  return {
    async stop() {
      stopping = true;
      await Promise.allSettled(loops);
    },
  };
}
