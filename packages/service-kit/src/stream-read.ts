import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { isNoMessages } from "./jetstream-errors.js";

/**
 * Every stored message of `stream` on `subject` (wildcards allowed), oldest first, read page by
 * page with batched direct gets: a service that may read a stream (its `readers` entry) needs no
 * consumer of its own for this, so a rebuild or a training run reads what is stored without any
 * right to create consumers. `upToSeq` stops at a sequence (a snapshot's end).
 */
export async function* readStream(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  options: { fromSeq?: number; upToSeq?: number; page?: number } = {},
): AsyncGenerator<StoredMsg> {
  const page = options.page ?? 1000;
  let seq = options.fromSeq ?? 1;
  for (;;) {
    let read = 0;
    try {
      const batch = await jsm.direct.getBatch(stream, { seq, next_by_subj: subject, batch: page });
      for await (const message of batch) {
        read += 1;
        if (options.upToSeq !== undefined && message.seq > options.upToSeq) return;
        seq = message.seq + 1;
        yield message;
      }
    } catch (err) {
      // "No results": nothing (more) on the subject.
      if (!isNoMessages(err)) throw err;
    }
    if (read < page) return;
  }
}
