/**
 * The actor contract. An actor is a plain class with `setup()`, `runStep()` and `stop()` (each may
 * return a Promise); improv runs each actor in its own worker and drives it through the signals
 * setup → run → pause/resume → stop → quit.
 *
 * Semantics (improv's, with its faults fixed):
 * - `setup()` runs once, on the `setup` command. If it throws, the actor is `failed` and Nexus
 *   refuses `run`, naming the actor and the error.
 * - `runStep()` is called over and over while the pipeline runs. If it throws, the error is logged
 *   and the loop goes on after a back-off (or the actor fails, with `on_error: fail`). While it
 *   awaits `this.q_in.get()` an idle actor uses no CPU.
 * - `pause` and `stop` park the actor at its next `get()`/`put()` (its links are held; nothing is
 *   interrupted and no message in hand is lost); `resume` and `run` go on from there. `quit` closes
 *   the links: a pending `get()` rejects with `LinkClosedError`, which the host swallows.
 * - `stop()` runs once per stop (and on quit, for an actor that was set up and not yet stopped).
 *
 * @example
 * ```ts
 * import { Actor } from '@improv/core';
 *
 * export class Processor extends Actor<{ scale?: number }> {
 *   count = 0;
 *   async runStep() {
 *     const { key } = await this.q_in.get() as { key: string };
 *     const frame = await this.store.get<Float64Array>(key);
 *     this.count += 1;
 *     await this.store.delete(key);
 *   }
 *   stop() { this.log.info(`processed ${this.count} frames`); }
 * }
 * ```
 * @module
 */
import type { InputLink, Link, OutputLink } from './link/transport.ts';
import type { Logger } from './log.ts';
import type { StoreClient } from './store/driver.ts';

const actorMarker = Symbol.for('improv.actor');

/** A YAML value type, for {@link Actor.optionTypes}. `any` takes every value. */
export type OptionType = 'number' | 'string' | 'boolean' | 'list' | 'mapping' | 'any';

/** The options an actor class takes, by name, with their YAML types. */
export type OptionTypes = Readonly<Record<string, OptionType>>;

/** Where `Actor.publish` sends values: the actor host's (absent: publishing does nothing). */
export interface PublishChannel {
  /** Keeps `value` for whoever watches (see {@link Actor.publish}); does nothing while nobody does. */
  publish(name: string, value: unknown): void;
  /** True while somebody watches. */
  readonly on: boolean;
}

/** What the actor host hands an actor's constructor. */
export interface ActorContext<Options = Record<string, unknown>> {
  name: string;
  options: Options;
  links: Readonly<Record<string, Link>>;
  store: StoreClient;
  log: Logger;
  /** Where {@link Actor.publish} goes (the dashboard); absent, publishing does nothing. */
  publisher?: PublishChannel;
}

const nobodyWatches: PublishChannel = { publish() {}, on: false };

/** Base class of every actor. Subclasses implement `runStep()` and may override `setup()`/`stop()`. */
export abstract class Actor<Options = Record<string, unknown>> {
  /** Marks actor classes across duplicate package copies (see {@link isActorClass}). */
  static readonly [actorMarker] = true;

  /**
   * The options this class takes, when it declares them: `validate` and `run` then refuse a YAML
   * option it does not take (with "did you mean") or of the wrong type, at its line. Undeclared
   * (the default), every option is passed on as it is.
   *
   * @example
   * ```ts
   * export class Generator extends Actor<{ rate?: number; size?: number }> {
   *   static override optionTypes: OptionTypes = { rate: 'number', size: 'number' };
   * }
   * ```
   */
  static optionTypes: OptionTypes | undefined = undefined;

  /** The actor's name (its key under `actors:` in the YAML). */
  readonly name: string;
  /** Every YAML key of the actor except `package` and `class`. */
  readonly options: Options;
  /** Links by name, e.g. `this.links.q_in`. */
  readonly links: Readonly<Record<string, Link>>;
  /** The pipeline's store. */
  readonly store: StoreClient;
  /** Log records go to the pipeline's log. */
  readonly log: Logger;
  readonly #publisher: PublishChannel;

  /** Subclasses that define a constructor pass the context on: `super(context)`. */
  constructor(context: ActorContext<Options>) {
    this.name = context.name;
    this.options = context.options;
    this.links = context.links;
    this.store = context.store;
    this.log = context.log;
    this.#publisher = context.publisher ?? nobodyWatches;
  }

  /**
   * Sends `value` to whoever watches this actor's stream `name` — the dashboard draws it in a panel
   * of its own — without a link. While nobody watches, it returns at once and keeps nothing.
   * - A number, or a record of numbers (`{ dff: 0.4, spikes: 2 }`): a point of a time series; every
   *   point reaches the page.
   * - Anything else (a typed array: a line; `{ array, shape: [rows, cols] }`: an image; `{ x, y }`
   *   arrays: a scatter; other values: text): only the newest reaches the page, at most ~60 times a
   *   second. It is copied at once, so a zero-copy view from the store may be published.
   *
   * @example
   * ```ts
   * this.publish('mean', mean);
   * if (this.publishing) this.publish('frame', await this.store.getArray(key));
   * ```
   */
  publish(name: string, value: unknown): void {
    this.#publisher.publish(name, value);
  }

  /** True while somebody watches what this actor publishes: skip preparing values nobody sees. */
  get publishing(): boolean {
    return this.#publisher.on;
  }

  /** The input link `q_in`. */
  get q_in(): InputLink {
    return this.input('q_in');
  }

  /** The output link `q_out`. */
  get q_out(): OutputLink {
    return this.output('q_out');
  }

  /** The input link called `name`; throws a clear error when there is none. */
  input<T = unknown>(name: string): InputLink<T> {
    const link = this.links[name];
    if (link?.direction !== 'in') throw new Error(this.missingLink(name, 'in', link));
    return link as InputLink<T>;
  }

  /** The output link called `name`; throws a clear error when there is none. */
  output<T = unknown>(name: string): OutputLink<T> {
    const link = this.links[name];
    if (link?.direction !== 'out') throw new Error(this.missingLink(name, 'out', link));
    return link as OutputLink<T>;
  }

  /** Called once on `setup`. */
  setup(): void | Promise<void> {}

  /** Called over and over while the pipeline runs. */
  abstract runStep(): void | Promise<void>;

  /** Called once per `stop` (and on quit). */
  stop(): void | Promise<void> {}

  private missingLink(name: string, want: 'in' | 'out', found: Link | undefined): string {
    const role = want === 'in' ? 'sink' : 'source';
    if (found) {
      return `actor "${this.name}": link "${name}" is an ${found.direction}put link, not an ${want}put link`;
    }
    const names = Object.keys(this.links);
    return `actor "${this.name}" has no link "${name}" (its links: ${names.length ? names.join(', ') : 'none'}); connect it as a ${role} in the pipeline's connections, e.g. ${want === 'in' ? `Source.q_out: [${this.name}.${name}]` : `${this.name}.${name}: [Sink.q_in]`}`;
  }
}

/** A class that extends {@link Actor} (from any copy of this package). */
export type ActorClass = new (context: ActorContext<never>) => Actor<never>;

/** True for a class that extends {@link Actor}, even from another copy of `@improv/core`. */
export function isActorClass(value: unknown): value is ActorClass {
  return typeof value === 'function' && (value as unknown as Record<symbol, unknown>)[actorMarker] === true;
}
