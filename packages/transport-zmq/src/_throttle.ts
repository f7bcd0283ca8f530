/**
 * A report that would otherwise repeat many times a second (a refused peer tries again every few
 * milliseconds): said the first time, then at most once per interval, with how many times it
 * happened since it was last said (package-private).
 * @module
 */

/** Counts occurrences of one report and says when to give it. */
export class ThrottledReport {
  readonly #everyMs: number;
  #count = 0;
  #saidAt = Number.NEGATIVE_INFINITY;

  /** @param everyMs the least time between two reports */
  constructor(everyMs: number) {
    this.#everyMs = everyMs;
  }

  /**
   * Counts one occurrence. Returns how many occurred since the report was last given, this one
   * included (1 the first time), when it is to be given now; undefined while it is to stay quiet.
   */
  note(now: number = Date.now()): number | undefined {
    this.#count += 1;
    if (now - this.#saidAt < this.#everyMs) return undefined;
    const count = this.#count;
    this.#saidAt = now;
    this.#count = 0;
    return count;
  }
}
