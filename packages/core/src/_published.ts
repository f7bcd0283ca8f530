/**
 * `nexus.watchPublished()` (package-private; Nexus owns one and delegates to it). While the first
 * watcher comes, every actor's host is told to keep what its actor publishes; when the last goes,
 * to stop. A host started meanwhile (a revive, a restart) is told at its start.
 * @module
 */
import { type HostChannel, type HostLine, Listeners } from './_host-channels.ts';
import type { Published } from './nexus-api.ts';
import type { PublishedMessage, PublishRequestMessage } from './worker/protocol.ts';

/** What watching needs from Nexus (and its line to the hosts, see `_host-channels.ts`). */
export interface PublishedOptions extends HostLine<PublishRequestMessage> {
  /** Every actor's name. */
  actors: readonly string[];
}

export class PublishedValues implements HostChannel<PublishedMessage> {
  readonly #options: PublishedOptions;
  readonly #listeners: Listeners<Published>;

  constructor(options: PublishedOptions) {
    this.#options = options;
    this.#listeners = new Listeners(options.warn, 'watchPublished()');
  }

  /** Starts watching; returns the function that ends it (safe to call more than once). */
  watch(listener: (published: Published) => void): () => void {
    const stop = this.#listeners.add(listener, () => {
      if (this.#listeners.size === 0) this.#tellAll(false);
    });
    if (this.#listeners.size === 1) this.#tellAll(true);
    return stop;
  }

  /** A host delivered what its actor published. */
  record(actor: string, message: PublishedMessage): void {
    this.#listeners.emit({ actor, name: message.name, data: message.data });
  }

  /** An actor's host (re)started: it keeps what its actor publishes while somebody watches. */
  actorStarted(actor: string): void {
    if (this.#listeners.size > 0) this.#options.send(actor, { type: 'publish', on: true });
  }

  /** Ends every watch (the pipeline quit). */
  close(): void {
    this.#listeners.clear();
  }

  #tellAll(on: boolean): void {
    for (const actor of this.#options.actors) this.#options.send(actor, { type: 'publish', on });
  }
}
