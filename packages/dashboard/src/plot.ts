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
 * `{ key, t }` plots the array under `key` (an image when it was stored with a 2-D shape). The
 * store values of the messages it reads are then deleted, as any sink does with what it has read
 * (and as a link does with the messages it drops); set `keep_keys: true` when another actor deletes them.
 * @module
 */
import { Actor, type OptionTypes, releaseKeys, storeKeysIn } from '@improv/core';

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

  override async runStep(): Promise<void> {
    const message = await this.q_in.get();
    try {
      if (this.publishing) this.publish(this.options.name ?? this.name, await this.#plottable(message));
    } finally {
      if (this.options.keep_keys !== true) await releaseKeys(message, this.store);
    }
  }

  /** The value to show for `message`: the chosen field, with a store key read from the store. */
  async #plottable(message: unknown): Promise<unknown> {
    let value = message;
    if (this.options.field !== undefined) {
      for (const part of this.options.field.split('.')) {
        value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[part] : undefined;
      }
      if (value === undefined) {
        throw new Error(
          `Plot "${this.name}": the message has no field "${this.options.field}" (its fields: ${fieldsOf(message)}); set field: to one of them`,
        );
      }
    }
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

function fieldsOf(message: unknown): string {
  if (typeof message !== 'object' || message === null) return `none: it is ${typeof message}`;
  const names = Object.keys(message);
  return names.length === 0 ? 'none' : names.join(', ');
}
