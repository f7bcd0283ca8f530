/**
 * The `Plot` actor: shows on the dashboard whatever reaches its `q_in`. Connect it with
 * `policy: drop-oldest` so the display takes the newest and never slows the experiment.
 *
 * ```yaml
 * actors:
 *   Plot:
 *     package: '@improv/dashboard/plot'
 *     class: Plot
 *     name: averages      # the panel's name (default: the actor's)
 *     field: mean         # plot this field of each message (default: the whole message)
 * connections:
 *   to_plot:
 *     sources: [Processor.q_out]
 *     sinks: [Plot.q_in]
 *     policy: drop-oldest
 * ```
 *
 * What a message becomes (see `Actor.publish`): a number or a record of numbers → a time series; a
 * typed array → a line; `{ array, shape: [rows, cols] }` → an image; `{ x, y }` → a scatter. Store
 * keys in a message are read here, in the pipeline, and only while a page watches: a message
 * `{ key, t }` plots the array under `key` (an image when it was stored with a 2-D shape). Of a fast
 * stream of images only the newest is read, at most ~60 times a second (what a page can show); the
 * rest are passed over unread. The
 * store values of the messages it reads are then deleted, as any sink does with what it has read
 * (and as a link does with the messages it drops); set `keep_keys: true` when another actor deletes them.
 * @module
 */
import { Actor, type OptionTypes, PUBLISH_EVERY_MS, releaseKeys, storeKeysIn } from '@improv/core';

/** The options of {@link Plot}. */
export interface PlotOptions {
  /** The panel's name on the page (default: the actor's name). */
  name?: string;
  /** Plot only this field of each message (`mean`, or a path such as `stats.mean`). */
  field?: string;
  /** Leave the store values of the messages it reads in the store (default: delete them once read). */
  keep_keys?: boolean;
}

export class Plot extends Actor<PlotOptions> {
  static override optionTypes: OptionTypes = { name: 'string', field: 'string', keep_keys: 'boolean' };

  /**
   * A message that came too soon after the last value shown (an image or a line: only the newest is
   * delivered, at most every {@link PUBLISH_EVERY_MS}): read and shown when that time is up, unless a
   * newer one replaces it first. So a fast stream costs one store read and one copy per delivery,
   * not one per message.
   */
  #pending: unknown;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #shownAt = Number.NEGATIVE_INFINITY;

  override async runStep(): Promise<void> {
    const message = await this.q_in.get();
    if (!this.publishing) {
      await this.#done(message);
      return;
    }
    let value: unknown;
    try {
      value = this.#field(message);
    } catch (error) {
      await this.#done(message);
      throw error;
    }
    // Numbers: every one is a point of the series.
    if (typeof value === 'number' || isNumberRecord(value)) {
      this.publish(this.#stream(), value);
      await this.#done(message);
      return;
    }
    const wait = this.#shownAt + PUBLISH_EVERY_MS - performance.now();
    if (wait <= 0) {
      await this.#show(message);
      return;
    }
    if (this.#pending !== undefined) await this.#done(this.#pending);
    this.#pending = message;
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      const pending = this.#pending;
      this.#pending = undefined;
      if (pending !== undefined) {
        this.#show(pending).catch((error: unknown) =>
          this.log.error(`Plot "${this.name}": ${error instanceof Error ? error.message : String(error)}`),
        );
      }
    }, wait);
  }

  override async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending !== undefined) await this.#done(pending);
  }

  #stream(): string {
    return this.options.name ?? this.name;
  }

  /** Reads what `message` stands for and publishes it; its store values are then deleted. */
  async #show(message: unknown): Promise<void> {
    this.#shownAt = performance.now();
    try {
      this.publish(this.#stream(), await this.#plottable(this.#field(message)));
    } finally {
      await this.#done(message);
    }
  }

  /** Done with `message`: its store values are deleted (unless `keep_keys`). */
  async #done(message: unknown): Promise<void> {
    if (this.options.keep_keys !== true) await releaseKeys(message, this.store);
  }

  /** The chosen field of `message` (the whole message without `field`). */
  #field(message: unknown): unknown {
    if (this.options.field === undefined) return message;
    let value = message;
    for (const part of this.options.field.split('.')) {
      value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[part] : undefined;
    }
    if (value === undefined) {
      throw new Error(
        `Plot "${this.name}": the message has no field "${this.options.field}" (its fields: ${fieldsOf(message)}); set field: to one of them`,
      );
    }
    return value;
  }

  /** What to show for `value`: a store key (alone, or the one key of a message) is read from the store. */
  async #plottable(value: unknown): Promise<unknown> {
    if (typeof value === 'string' && this.store.isKey(value)) return this.#read(value);
    const keys = storeKeysIn(value, this.store);
    // `{ key, t }`: the message stands for the stored value.
    if (keys.length === 1) return this.#read(keys[0]!);
    return value;
  }

  async #read(key: string): Promise<unknown> {
    const info = await this.store.info(key);
    if (info.kind === 'value') return this.store.get(key);
    const { array, shape } = await this.store.getArray(key);
    return shape.length >= 2 ? { array, shape } : array;
  }
}

/** A plain object whose fields are all numbers: a point of a series, as `publish` takes it. */
function isNumberRecord(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) return false;
  const fields = Object.values(value);
  return fields.length > 0 && fields.every((field) => typeof field === 'number');
}

function fieldsOf(message: unknown): string {
  if (typeof message !== 'object' || message === null) return `none: it is ${typeof message}`;
  const names = Object.keys(message);
  return names.length === 0 ? 'none' : names.join(', ');
}
