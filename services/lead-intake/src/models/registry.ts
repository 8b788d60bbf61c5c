import { MODEL_LOG_MAX, type ModelLogEntry, ModelPointer, ModelRecord } from "@followup/contracts";
import { isWrongLastSequence } from "@followup/service-kit";
import type { KV } from "@nats-io/kv";

/**
 * The model registry in the `models` bucket: `version.<version>` holds a promoted model and
 * `current` which one every copy scores with. `current` changes only by compare-and-set from
 * the revision it was read at, so a promotion and a rollback at the same moment cannot both
 * win: the loser reads again.
 */

export const CURRENT_KEY = "current";
export const versionKey = (version: string) => `version.${version}`;

const EMPTY: ModelPointer = { version: null, previous: [], log: [] };

export class NothingToRollBackError extends Error {
  override name = "NothingToRollBackError";
}

export class ModelRegistry {
  constructor(readonly kv: KV) {}

  async pointer(): Promise<{ pointer: ModelPointer; revision: number }> {
    const entry = await this.kv.get(CURRENT_KEY);
    if (entry === null || entry.operation !== "PUT")
      return { pointer: EMPTY, revision: entry?.revision ?? 0 };
    return { pointer: ModelPointer.parse(entry.json()), revision: entry.revision };
  }

  async record(version: string): Promise<ModelRecord | null> {
    const entry = await this.kv.get(versionKey(version));
    if (entry === null || entry.operation !== "PUT") return null;
    return ModelRecord.parse(entry.json());
  }

  /** Stores the model under its version and makes it current. */
  async promote(record: ModelRecord, now: Date): Promise<ModelPointer> {
    await this.kv.put(versionKey(record.version), JSON.stringify(ModelRecord.parse(record)));
    return this.#change((p) => ({
      version: record.version,
      previous: [...p.previous, p.version],
      log: appendLog(p.log, { at: now.toISOString(), action: "promoted", version: record.version }),
    }));
  }

  /** Makes the version current before this one current again (null: the committed model). */
  async rollback(now: Date): Promise<{ from: string | null; to: string | null }> {
    let from: string | null = null;
    let to: string | null = null;
    await this.#change((p) => {
      if (p.previous.length === 0) {
        throw new NothingToRollBackError(
          p.version === null
            ? "the committed model is current and nothing was promoted before it"
            : `no version was current before ${p.version}`,
        );
      }
      from = p.version;
      to = p.previous[p.previous.length - 1] ?? null;
      return {
        version: to,
        previous: p.previous.slice(0, -1),
        log: appendLog(p.log, { at: now.toISOString(), action: "rolled_back", version: to }),
      };
    });
    return { from, to };
  }

  async #change(next: (pointer: ModelPointer) => ModelPointer): Promise<ModelPointer> {
    for (let attempt = 1; ; attempt++) {
      const { pointer, revision } = await this.pointer();
      const value = next(pointer);
      try {
        if (revision === 0) await this.kv.create(CURRENT_KEY, JSON.stringify(value));
        else await this.kv.update(CURRENT_KEY, JSON.stringify(value), revision);
        return value;
      } catch (err) {
        // Someone changed `current` since it was read: read it again (a create races the same way).
        if (attempt >= 10 || !isWrongLastSequence(err)) throw err;
      }
    }
  }
}

function appendLog(log: readonly ModelLogEntry[], entry: ModelLogEntry): ModelLogEntry[] {
  return [...log, entry].slice(-MODEL_LOG_MAX);
}
