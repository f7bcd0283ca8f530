/**
 * One stream of events to many listeners, as callbacks or as async iterators that end with the
 * stream (package-private; Nexus's `on()`, `events()` and `onEvent`).
 * @module
 */

export class EventStream<E> {
  readonly #listeners = new Set<(event: E | undefined) => void>();
  #ended = false;

  /** Calls `listener` for every later event; returns the function that stops it. */
  on(listener: (event: E) => void): () => void {
    const wrapped = (event: E | undefined) => {
      if (event !== undefined) listener(event);
    };
    this.#listeners.add(wrapped);
    return () => this.#listeners.delete(wrapped);
  }

  /** Every later event, as an async iterable that ends when the stream does. */
  iterate(): AsyncIterableIterator<E> {
    const buffer: E[] = [];
    let notify: (() => void) | undefined;
    let done = this.#ended;
    const listener = (event: E | undefined) => {
      if (event === undefined) done = true;
      else buffer.push(event);
      notify?.();
    };
    this.#listeners.add(listener);
    const finish = () => {
      this.#listeners.delete(listener);
    };
    const iterator: AsyncIterableIterator<E> = {
      [Symbol.asyncIterator]: () => iterator,
      async next() {
        while (buffer.length === 0 && !done) {
          await new Promise<void>((resolve) => {
            notify = resolve;
          });
          notify = undefined;
        }
        const value = buffer.shift();
        if (value !== undefined) return { value, done: false };
        finish();
        return { value: undefined, done: true };
      },
      async return() {
        finish();
        return { value: undefined, done: true };
      },
    };
    return iterator;
  }

  /** Sends `event` to every listener; a listener that throws does not stop the others. */
  emit(event: E): void {
    this.#send(event);
  }

  /** Ends the stream: iterators finish once they have handed out what they hold. */
  end(): void {
    this.#ended = true;
    this.#send(undefined);
  }

  #send(event: E | undefined): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        // A listener's bug must not take the pipeline down.
      }
    }
  }
}
