/**
 * What the server keeps for one page between two `plots` messages (package-private): everything
 * published since the last one, merged per stream — series points in full (up to the core's
 * per-delivery limit, the oldest going first), other values newest-only — so a page that draws
 * slowly gets fewer, fuller messages and a page that stops drawing holds a bounded amount.
 * @module
 */
import { PUBLISH_SERIES_LIMIT, type Published, type PublishedSeries } from '@improv/core';

/** Appends `more` to `into` (fields new to either side are NaN where they were absent). */
function appendSeries(into: PublishedSeries, more: PublishedSeries): PublishedSeries {
  const before = into.times.length;
  const added = more.times.length;
  const values: Record<string, number[]> = {};
  for (const field of new Set([...Object.keys(into.values), ...Object.keys(more.values)])) {
    const old = into.values[field] ?? new Array<number>(before).fill(Number.NaN);
    const fresh = more.values[field] ?? new Array<number>(added).fill(Number.NaN);
    values[field] = old.concat(fresh);
  }
  const times = into.times.concat(more.times);
  const over = Math.max(0, times.length - PUBLISH_SERIES_LIMIT);
  if (over > 0) {
    times.splice(0, over);
    for (const column of Object.values(values)) column.splice(0, over);
  }
  return { kind: 'series', times, values, skipped: into.skipped + more.skipped + over };
}

/**
 * `plots` messages a client may have unanswered (not yet `drawn`): two, so one is on its way while
 * the page draws the other — with one, every message waits for the actor's next delivery after the
 * page's answer and the page draws at half its frame rate.
 */
export const PLOTS_IN_FLIGHT = 2;

export class PlotQueue {
  readonly #pending = new Map<string, Published>();
  /** Messages sent that the page has not said `drawn` to yet. */
  #inFlight = 0;

  /** Keeps what an actor published. */
  add(published: Published): void {
    const key = `${published.actor}/${published.name}`;
    const previous = this.#pending.get(key);
    if (previous === undefined || previous.data.kind !== published.data.kind) {
      this.#pending.set(key, published);
      return;
    }
    const data =
      previous.data.kind === 'series' && published.data.kind === 'series'
        ? appendSeries(previous.data, published.data)
        : { ...published.data, skipped: previous.data.skipped + published.data.skipped + 1 };
    this.#pending.set(key, { ...published, data });
  }

  /** The streams to send now, or undefined while the page has enough to draw (or nothing is new). */
  take(): Published[] | undefined {
    if (this.#inFlight >= PLOTS_IN_FLIGHT || this.#pending.size === 0) return undefined;
    const streams = [...this.#pending.values()];
    this.#pending.clear();
    this.#inFlight += 1;
    return streams;
  }

  /** The page has drawn one message. */
  drawn(): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
  }
}
