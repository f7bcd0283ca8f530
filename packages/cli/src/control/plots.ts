/**
 * What the server keeps for one page between two `plots` messages, and their pacing (package-private):
 * everything published since the last one, merged per stream — series points in full (up to the
 * core's per-delivery limit, the oldest going first), other values newest-only — so a page that
 * draws slowly gets fewer, fuller messages and a page that stops drawing holds a bounded amount.
 * @module
 */
import { PUBLISH_EVERY_MS, PUBLISH_SERIES_LIMIT, type Published, type PublishedSeries } from '@improv/core';

/** Appends `more` to `into` (fields new to either side are null where they were absent). */
function appendSeries(into: PublishedSeries, more: PublishedSeries): PublishedSeries {
  const before = into.times.length;
  const added = more.times.length;
  const values: Record<string, (number | null)[]> = {};
  for (const field of new Set([...Object.keys(into.values), ...Object.keys(more.values)])) {
    const old = into.values[field] ?? new Array<number | null>(before).fill(null);
    const fresh = more.values[field] ?? new Array<number | null>(added).fill(null);
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

/**
 * What the server keeps for one page and when it sends it: at most two messages unanswered, and
 * one every {@link PUBLISH_EVERY_MS} at most (a page draws ~60 times a second). What comes after a
 * quiet period goes at once; what comes sooner waits for the rest of that period, so deliveries of
 * several actors (a series and an image, say) go to the page as one message, not one each: every
 * message wakes the server, the socket and the page, and is answered.
 */
export class PlotQueue {
  readonly #send: (streams: Published[]) => void;
  readonly #pending = new Map<string, Published>();
  /** Messages sent that the page has not said `drawn` to yet. */
  #inFlight = 0;
  /** When the last message went (performance.now() ms). */
  #sentAt = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `send` sends one `plots` message with these streams. */
  constructor(send: (streams: Published[]) => void) {
    this.#send = send;
  }

  /** Keeps what an actor published, and sends it when the page may have it. */
  add(published: Published): void {
    const key = `${published.actor}/${published.name}`;
    const previous = this.#pending.get(key);
    if (previous === undefined || previous.data.kind !== published.data.kind) {
      this.#pending.set(key, published);
    } else {
      const data =
        previous.data.kind === 'series' && published.data.kind === 'series'
          ? appendSeries(previous.data, published.data)
          : { ...published.data, skipped: previous.data.skipped + published.data.skipped + 1 };
      this.#pending.set(key, { ...published, data });
    }
    this.#pump();
  }

  /** The page has drawn one message: the next may go. */
  drawn(): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    this.#pump();
  }

  /** The client went or asked for no more plots: nothing more is sent. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }

  #pump(): void {
    if (this.#timer !== undefined || this.#inFlight >= PLOTS_IN_FLIGHT || this.#pending.size === 0) return;
    const wait = this.#sentAt + PUBLISH_EVERY_MS - performance.now();
    if (wait > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#pump();
      }, wait);
      return;
    }
    const streams = [...this.#pending.values()];
    this.#pending.clear();
    this.#inFlight += 1;
    this.#sentAt = performance.now();
    this.#send(streams);
  }
}
