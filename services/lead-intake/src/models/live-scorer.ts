import type { Scorer, ScoringInput } from "../scoring/scoring.js";

/**
 * The scorer every route uses: the model the registry says is current, swapped in place when a
 * promotion or a rollback arrives through the watch, so no copy needs a restart. A lead is scored
 * and labelled with its version in one synchronous step, so the two always agree.
 */
export class LiveScorer implements Scorer {
  #scorer: Scorer;
  readonly #fallback: Scorer;

  constructor(fallback: Scorer) {
    this.#fallback = fallback;
    this.#scorer = fallback;
  }

  get version(): string {
    return this.#scorer.version;
  }

  get source(): Scorer["source"] {
    return this.#scorer.source;
  }

  get refusal(): string | undefined {
    return this.#scorer.refusal;
  }

  predict(input: ScoringInput): number {
    return this.#scorer.predict(input);
  }

  /** Scores with `scorer` from now on; undefined: the committed model again. */
  use(scorer: Scorer | undefined): void {
    this.#scorer = scorer ?? this.#fallback;
  }

  /** The committed model (services/lead-intake/model/conversion-model.json). */
  get fallback(): Scorer {
    return this.#fallback;
  }
}
