/**
 * The published streams as the page holds them, and the drawing loop: a `plots` message is merged
 * into the streams at once, drawn in the next animation frame (however many messages came, each
 * panel draws once per frame), and only then is the server told `drawn` — so the server never
 * sends more than the page draws.
 * @module
 */
import type { Published } from '@improv/core';
import { classify, type Shown } from './classify.ts';
import type { BufferPool } from './decode.ts';
import { appendSeries, type SeriesData } from './series.ts';

export type StreamKind = 'series' | Shown['kind'];

export interface Stream {
  /** `actor/name`. */
  readonly key: string;
  readonly actor: string;
  readonly name: string;
  kind: StreamKind;
  series: SeriesData | undefined;
  latest: Shown | undefined;
  /** When the newest value was published (ms since the epoch). */
  time: number;
  /** Values (or points) replaced or dropped before they reached the page, in all. */
  skipped: number;
  /** Times the panel drew new data. */
  updates: number;
  /** Data came that the panel has not drawn. */
  dirty: boolean;
  /** Arrivals (time, points or values) over the last seconds, for the rate. */
  readonly arrivals: [number, number][];
  /** Set by the stream's panel while it is mounted: draws the stream's data. */
  draw: (() => void) | undefined;
}

/** Values (series: points) per second that reached the page, over the last ~2 s. */
export function rateOf(stream: Stream, now = performance.now()): number {
  const arrivals = stream.arrivals;
  while (arrivals.length > 0 && arrivals[0]![0] < now - 2000) arrivals.shift();
  if (arrivals.length === 0) return 0;
  let count = 0;
  for (const [, n] of arrivals) count += n;
  return count / 2;
}

export class PlotStore {
  readonly streams = new Map<string, Stream>();
  #frameRequested = false;
  /** `plots` messages taken in and not yet answered with `drawn` (one answer each, after the frame that draws them). */
  #owed = 0;
  readonly #sendDrawn: () => void;
  readonly #pool: BufferPool | undefined;
  readonly #listeners = new Set<() => void>();

  /** `pool`: where an image's buffer goes back once a newer frame replaced it (nothing else holds it). */
  constructor(sendDrawn: () => void, pool?: BufferPool) {
    this.#sendDrawn = sendDrawn;
    this.#pool = pool;
  }

  /** Called when streams are added or change kind or fields (the panels to show change). */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Takes in one `plots` message; it is drawn in the next animation frame, then `drawn` goes out. */
  receive(published: Published[]): void {
    let changed = false;
    const now = performance.now();
    for (const each of published) changed = this.#ingest(each, now) || changed;
    this.#owed += 1;
    if (changed) for (const listener of this.#listeners) listener();
    this.#requestFrame();
  }

  /** Draws a stream's data at the next frame (a panel just mounted, or its settings changed). */
  redraw(stream: Stream): void {
    stream.dirty = true;
    this.#requestFrame();
  }

  #requestFrame(): void {
    if (this.#frameRequested) return;
    this.#frameRequested = true;
    requestAnimationFrame(this.#frame);
  }

  readonly #frame = (): void => {
    this.#frameRequested = false;
    for (const stream of this.streams.values()) {
      if (!stream.dirty || stream.draw === undefined) continue;
      stream.dirty = false;
      try {
        stream.draw();
      } catch (error) {
        console.error(`improv dashboard: drawing ${stream.key} failed`, error);
      }
    }
    for (; this.#owed > 0; this.#owed -= 1) this.#sendDrawn();
  };

  /** Merges one stream's news; true when the set of panels or their shape changed. */
  #ingest(published: Published, now: number): boolean {
    const key = `${published.actor}/${published.name}`;
    let stream = this.streams.get(key);
    let changed = false;
    if (stream === undefined) {
      stream = {
        key,
        actor: published.actor,
        name: published.name,
        kind: 'text',
        series: undefined,
        latest: undefined,
        time: 0,
        skipped: 0,
        updates: 0,
        dirty: false,
        arrivals: [],
        draw: undefined,
      };
      this.streams.set(key, stream);
      changed = true;
    }
    const data = published.data;
    stream.skipped += data.skipped;
    stream.dirty = true;
    if (data.kind === 'series') {
      if (stream.kind !== 'series' || stream.series === undefined) {
        stream.kind = 'series';
        stream.latest = undefined;
        stream.series = { times: [], fields: [], columns: new Map(), notFiniteAt: [], notFinite: 0 };
        changed = true;
      }
      changed = appendSeries(stream.series, data.times, data.values) || changed;
      stream.time = data.times.at(-1) ?? stream.time;
      stream.arrivals.push([now, data.times.length]);
    } else {
      const shown = classify(data.value);
      if (shown.kind !== stream.kind) {
        stream.kind = shown.kind;
        stream.series = undefined;
        changed = true;
      }
      // The panel reads an image's array only through `latest` (charts keep theirs: lines are not given back).
      if (stream.latest?.kind === 'image' && this.#pool !== undefined) this.#pool.release(stream.latest.array);
      stream.latest = shown;
      stream.time = data.time;
      stream.arrivals.push([now, 1]);
    }
    return changed;
  }
}
