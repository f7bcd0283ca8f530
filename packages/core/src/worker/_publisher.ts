/**
 * `this.publish(name, value)` in an actor host (package-private): what the dashboard plots. While
 * nobody watches (`nexus.watchPublished()`), publishing is one boolean test. While somebody does,
 * numbers (and records of numbers) are kept point by point and other values newest-only, and what
 * was kept goes up the control channel at most every {@link PUBLISH_EVERY_MS} per actor.
 * @module
 */
import { checkArrivesUnchanged, dtypeCodeOf, typedArrayConstructors, UnencodableValueError } from '../codec.ts';
import { PUBLISH_EVERY_MS, PUBLISH_SERIES_LIMIT, type PublishedLatest, type PublishedSeries } from '../nexus-api.ts';
import type { PublishedMessage } from './protocol.ts';

/** Fields of a record of numbers at most (a wider record is a value, shown newest-only). */
const MAX_FIELDS = 32;
/** How deep {@link ownCopy} copies objects and arrays (`{ frame: { array, shape } }` is depth 2). */
const COPY_DEPTH = 4;

/** A plain object whose fields are all numbers (`{ dff: 0.4, spikes: 2 }`): a point of a series. */
function numberFields(value: unknown): [string, number][] | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return undefined;
  const entries = Object.entries(value);
  if (entries.length === 0 || entries.length > MAX_FIELDS) return undefined;
  for (const [, field] of entries) if (typeof field !== 'number') return undefined;
  return entries as [string, number][];
}

/**
 * A copy that owns its memory: typed arrays are sliced (a zero-copy store view may be freed or
 * rewritten after the step, and a view of a SharedArrayBuffer would be shared, not copied, when
 * posted); plain objects and arrays are copied around them; anything else is kept as it is. The
 * buffers of the copies are added to `owned`: nothing else refers to them, so they can be
 * transferred when posted rather than copied again.
 */
export function ownCopy(value: unknown, owned: ArrayBuffer[] = [], depth = COPY_DEPTH): unknown {
  if (ArrayBuffer.isView(value)) {
    // Through the kind's own class: a Node Buffer's slice() is a view, not a copy.
    const code = dtypeCodeOf(value);
    const bytes = () => new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    const copy = code === 0 ? new Uint8Array(bytes()) : new typedArrayConstructors[code - 1]!(value as never);
    owned.push(copy.buffer as ArrayBuffer);
    return copy;
  }
  if (depth === 0 || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((item) => ownCopy(item, owned, depth - 1));
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) {
    // Told in the step: an invalid Date, an Error or a RegExp would reach the page changed.
    checkArrivesUnchanged(value);
    return value;
  }
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) copy[key] = ownCopy(field, owned, depth - 1);
  return copy;
}

/**
 * `{ array, shape }` whose shape does not hold the array's elements: the page could only show it as
 * text, so the step hears of it (as a Python actor's does).
 */
function checkShaped(name: string, value: unknown): void {
  if (typeof value !== 'object' || value === null || !('array' in value) || !('shape' in value)) return;
  const { array, shape } = value as { array: unknown; shape: unknown };
  if (!ArrayBuffer.isView(array) || !Array.isArray(shape)) return;
  const length = (array as unknown as { length?: number }).length ?? array.byteLength;
  const elements = shape.every((size) => Number.isInteger(size) && size >= 0)
    ? shape.reduce((product: number, size: number) => product * size, 1)
    : Number.NaN;
  if (elements === length) return;
  throw new TypeError(
    `publish("${name}", { array, shape }): shape [${shape.join(', ')}] ${Number.isNaN(elements) ? 'is not a list of whole numbers' : `holds ${elements} elements`} but the array has ${length}; give the shape of the array (rows, columns)`,
  );
}

export class Publisher {
  readonly #post: (message: PublishedMessage, transfer: readonly ArrayBuffer[]) => void;
  readonly #warn: (message: string) => void;
  /** Streams whose delivery failed, each said once. */
  readonly #failed = new Set<string>();
  #on = false;
  readonly #series = new Map<string, PublishedSeries>();
  /** Each kept value, with the buffers of its typed arrays: its own copies, moved to Nexus, not copied again. */
  readonly #latest = new Map<string, { data: PublishedLatest; transfer: ArrayBuffer[] }>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** A flush is queued as a microtask (the first value after a quiet period). */
  #soon = false;
  /** When the last delivery went (performance.now() ms). */
  #sentAt = Number.NEGATIVE_INFINITY;

  /**
   * `post` sends a delivery up, moving the buffers in its second argument (a worker's channel) or
   * copying them (a process's); `warn` says (once per stream) that one could not be sent.
   */
  constructor(
    post: (message: PublishedMessage, transfer: readonly ArrayBuffer[]) => void,
    warn: (message: string) => void,
  ) {
    this.#post = post;
    this.#warn = warn;
  }

  /** Whether somebody watches: `Actor.publishing`. */
  get on(): boolean {
    return this.#on;
  }

  /** Nexus says whether somebody watches; off drops whatever was kept. */
  set(on: boolean): void {
    this.#on = on;
    if (on) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#soon = false;
    this.#series.clear();
    this.#latest.clear();
  }

  /** `Actor.publish`. */
  readonly publish = (name: string, value: unknown): void => {
    if (!this.#on) return;
    if (typeof name !== 'string' || name === '') {
      throw new TypeError(`publish(name, value): name must be a non-empty string, not ${JSON.stringify(name)}`);
    }
    checkShaped(name, value);
    const time = Date.now();
    const fields = typeof value === 'number' ? ([['value', value]] as [string, number][]) : numberFields(value);
    if (fields !== undefined) this.#add(name, time, fields);
    else {
      const previous = this.#latest.get(name);
      const transfer: ArrayBuffer[] = [];
      let copy: unknown;
      try {
        copy = ownCopy(value, transfer);
      } catch (error) {
        if (!(error instanceof UnencodableValueError)) throw error;
        throw new TypeError(`publish("${name}", …): ${error.message}`, { cause: error });
      }
      const data: PublishedLatest = {
        kind: 'latest',
        time,
        value: copy,
        skipped: previous === undefined ? 0 : previous.data.skipped + 1,
      };
      this.#latest.set(name, { data, transfer });
    }
    this.#schedule();
  };

  /**
   * Sends what was kept (when its period is up, and before the host quits). A value published after
   * a quiet period goes at once (with whatever else the same turn publishes); after a delivery, the
   * next goes when {@link PUBLISH_EVERY_MS} has passed. Waiting a whole period after the first value
   * instead lost frames of a 60 Hz stream whenever the timer fired late: the next frame replaced the
   * kept one before it went.
   */
  #schedule(): void {
    if (this.#timer !== undefined || this.#soon) return;
    const wait = this.#sentAt + PUBLISH_EVERY_MS - performance.now();
    if (wait > 0) {
      this.#timer = setTimeout(() => this.flush(), wait);
      return;
    }
    this.#soon = true;
    queueMicrotask(() => {
      if (this.#soon) this.flush();
    });
  }

  /** Sends what was kept now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#soon = false;
    this.#sentAt = performance.now();
    const kept = [
      ...[...this.#series].map(([name, data]) => ({ name, data, transfer: [] as ArrayBuffer[] })),
      ...[...this.#latest].map(([name, { data, transfer }]) => ({ name, data, transfer })),
    ];
    this.#series.clear();
    this.#latest.clear();
    for (const { name, data, transfer } of kept) {
      try {
        this.#post({ type: 'published', name, data }, transfer);
      } catch (error) {
        // A value the channel cannot carry (a function, a class instance with one): dropped, said once.
        if (this.#failed.has(name)) continue;
        this.#failed.add(name);
        this.#warn(
          `publish("${name}", …): the value cannot be sent to the dashboard (${error instanceof Error ? error.message : String(error)}); publish numbers, typed arrays, { array, shape }, { x, y } or plain data (said once)`,
        );
      }
    }
  }

  #add(name: string, time: number, fields: [string, number][]): void {
    let series = this.#series.get(name);
    if (series === undefined) {
      series = { kind: 'series', times: [], values: {}, skipped: 0 };
      this.#series.set(name, series);
    }
    const { times, values } = series;
    if (times.length >= PUBLISH_SERIES_LIMIT) {
      times.shift();
      for (const column of Object.values(values)) column.shift();
      series.skipped += 1;
    }
    const length = times.length;
    times.push(time);
    for (const [field, number] of fields) {
      // A field seen for the first time: absent (null) for the points before it.
      const column = values[field] ?? new Array<number | null>(length).fill(null);
      values[field] = column;
      column.push(number);
    }
    for (const column of Object.values(values)) if (column.length === length) column.push(null);
  }
}
