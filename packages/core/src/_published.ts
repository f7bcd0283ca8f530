/**
 * `nexus.watchPublished()` (package-private; Nexus owns one and delegates to it). While the first
 * watcher comes, every actor's host is told to keep what its actor publishes; when the last goes,
 * to stop. A host started meanwhile (a revive, a restart) is told at its start.
 * @module
 */
import type { Published } from './nexus-api.ts';
import type { PublishedMessage, PublishRequestMessage } from './worker/protocol.ts';

/** What watching needs from Nexus. */
export interface PublishedOptions {
  /** Every actor's name. */
  actors: readonly string[];
  /** Posts a request to an actor's host (ignored while the actor has none). */
  send: (actor: string, message: PublishRequestMessage) => void;
  /** A listener threw: said once per watcher. */
  warn: (message: string) => void;
}

type Listener = (published: Published) => void;

export class PublishedValues {
  readonly #options: PublishedOptions;
  readonly #listeners = new Set<Listener>();

  constructor(options: PublishedOptions) {
    this.#options = options;
  }

  /** Starts watching; returns the function that ends it (safe to call more than once). */
  watch(listener: Listener): () => void {
    let warned = false;
    // Its own function per watcher, so the same listener given twice watches twice.
    const entry: Listener = (published) => {
      try {
        listener(published);
      } catch (error) {
        if (warned) return;
        warned = true;
        this.#options.warn(
          `a listener of watchPublished() threw (said once): ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    };
    this.#listeners.add(entry);
    if (this.#listeners.size === 1) this.#tellAll(true);
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      this.#listeners.delete(entry);
      if (this.#listeners.size === 0) this.#tellAll(false);
    };
  }

  /** A host delivered what its actor published. */
  record(actor: string, message: PublishedMessage): void {
    const published: Published = { actor, name: message.name, data: message.data };
    for (const listener of [...this.#listeners]) listener(published);
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
