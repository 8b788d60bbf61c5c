import { ModelPointer } from "@followup/contracts";
import type { Logger } from "@followup/service-kit";
import { loadConversionModel } from "../scoring/scoring.js";
import type { LiveScorer } from "./live-scorer.js";
import { CURRENT_KEY, type ModelRegistry } from "./registry.js";

/**
 * Follows `current` in the models bucket and swaps the live scorer on every change: a promotion
 * or a rollback reaches every lead-intake copy within moments, without a restart. The watch
 * delivers the key's value first, so a copy that starts later scores with the current model too.
 * A model that cannot be read or is refused (invalid, too weak) is logged at error and the copy
 * keeps what it scored with; null or a deleted `current` is the committed model.
 */
export async function watchCurrentModel(
  registry: ModelRegistry,
  live: LiveScorer,
  logger: Logger,
): Promise<{ stop(): void }> {
  const watch = await registry.kv.watch({ key: CURRENT_KEY });
  void (async () => {
    for await (const entry of watch) {
      try {
        const version = entry.operation === "PUT" ? ModelPointer.parse(entry.json()).version : null;
        if (version === null) {
          live.use(undefined);
        } else {
          const record = await registry.record(version);
          if (record === null) {
            logger.error({ version }, "model_version_missing; keeping the model in use");
            continue;
          }
          const scorer = loadConversionModel(record.model, logger, `models/${version}`);
          if (scorer.source !== "model") continue;
          live.use(scorer);
        }
        logger.info({ model_version: live.version, source: live.source }, "model_in_use");
      } catch (err) {
        logger.error({ err }, "model_watch_failed; keeping the model in use");
      }
    }
  })();
  return { stop: () => watch.stop() };
}
