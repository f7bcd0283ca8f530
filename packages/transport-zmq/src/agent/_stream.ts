/**
 * One actor's control channel as a byte stream inside the agent connection (package-private): what
 * one side writes arrives at the other as `data`, in order; `end` on either side closes both.
 * @module
 */
import type { ByteStream } from '@improv/core/runtime/process-channel';

export class RelayStream implements ByteStream {
  readonly #send: (bytes: Uint8Array) => void;
  readonly #sendEnd: () => void;
  #onData: ((chunk: Uint8Array) => void) | undefined;
  readonly #early: Uint8Array[] = [];
  readonly #onClose: (() => void)[] = [];
  #closed = false;

  constructor(send: (bytes: Uint8Array) => void, sendEnd: () => void) {
    this.#send = send;
    this.#sendEnd = sendEnd;
  }

  on(
    event: 'data' | 'error' | 'close',
    listener: ((chunk: Uint8Array) => void) | ((error: Error) => void) | (() => void),
  ): this {
    if (event === 'data') {
      this.#onData = listener as (chunk: Uint8Array) => void;
      for (const chunk of this.#early.splice(0)) this.#onData(chunk);
    } else if (event === 'close') {
      if (this.#closed) (listener as () => void)();
      else this.#onClose.push(listener as () => void);
    }
    return this;
  }

  write(chunk: Uint8Array): boolean {
    if (!this.#closed) this.#send(chunk);
    return true;
  }

  /** Tells the other side, and closes this one. */
  end(): void {
    if (this.#closed) return;
    this.#sendEnd();
    this.closed();
  }

  destroy(): void {
    this.end();
  }

  /** Bytes the other side wrote. */
  received(bytes: Uint8Array): void {
    if (this.#closed) return;
    // The frame's buffer may be reused by the socket: keep a copy.
    const copy = bytes.slice();
    if (this.#onData) this.#onData(copy);
    else this.#early.push(copy);
  }

  /** The other side ended, or the connection is gone. */
  closed(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const listener of this.#onClose.splice(0)) listener();
  }
}
