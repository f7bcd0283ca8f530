/**
 * The consumer side of a local link: reads every ring feeding one sink endpoint, round-robin.
 * Package-private; built by `openLink`.
 * @module
 */
import {
  type GetOptions,
  getTimeoutError,
  type InputLink,
  type LinkHooks,
  LinkSourcesGoneError,
  LinkTimeoutError,
  MsgpackDecoder,
} from '@improv/core';
import { DECLINED, FastDecoder } from '@improv/core/codec/fast';
import {
  BELL_SEQ,
  BELL_SLEEPING,
  CONSUMER_CLOSED,
  type LocalInDescriptor,
  PREFIX_BYTES,
  PRODUCER_CLOSED,
  PRODUCER_SLEEPING,
  READ,
  READ_COUNT,
  type RingViews,
  recordBytes,
  relax,
  ringViews,
  SPACE_SEQ,
  WRITE,
  WRITTEN,
  wake,
} from './_layout.ts';
import { LinkSide } from './_link-side.ts';

/** Bytes of a slab records are copied into before decoding (see `#copyOut`). */
const SLAB_BYTES = 65_536;
/**
 * A sleep on the doorbell this short (ms) means a producer is streaming: the consumer outran it
 * for a moment. Waking it costs the producer a notify of ~10 µs, more than its message, so the
 * consumer's next wait spins longer before it sleeps — up to {@link SPIN_STREAMING}× the base spin.
 */
const SHORT_SLEEP_MS = 0.1;
const SPIN_STREAMING = 16;

interface InRing extends RingViews {
  dropOldest: boolean;
  peer: string;
  /** Last seen WRITE: reloaded only when it says the ring is empty (it only ever grows). */
  write: number;
}

interface Waiter {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** The receiving side of a local link. */
export class LocalInputLink extends LinkSide implements InputLink {
  readonly direction = 'in' as const;
  readonly #rings: InRing[];
  readonly #bell: Int32Array<SharedArrayBuffer>;
  /** Typical messages, read in place; the general {@link #decoder} takes what it declines. */
  readonly #fast = new FastDecoder();
  readonly #decoder = new MsgpackDecoder();
  #slab = new Uint8Array(SLAB_BYTES);
  #slabUsed = 0;
  /** Ring to try first: fan-in is served round-robin so no source starves the others. */
  #next = 0;
  readonly #waiters: Waiter[] = [];
  /** `get()` calls made or parked while held, served in order on `release()`. */
  readonly #held: Waiter[] = [];
  #looping = false;
  /** Spins of the next wait before it sleeps: the base spin, more while a producer streams. */
  #spinBudget: number;

  constructor(descriptor: LocalInDescriptor, hooks: LinkHooks = {}) {
    super(descriptor, hooks);
    this.#spinBudget = this.spin;
    this.#bell = new Int32Array(descriptor.doorbell);
    this.#rings = descriptor.rings.map((info) => {
      const views = ringViews(info.buffer);
      return {
        ...views,
        dropOldest: info.policy === 'drop-oldest',
        peer: info.peer,
        write: Atomics.load(views.header, WRITE),
      };
    });
    // A revived actor reopens the descriptor of the one that quit: producers deliver to it again,
    // and a sleeping flag left by a worker killed mid-wait must not make producers notify for nothing.
    for (const { header } of this.#rings) Atomics.store(header, CONSUMER_CLOSED, 0);
    Atomics.store(this.#bell, BELL_SLEEPING, 0);
  }

  get(options?: GetOptions): Promise<unknown> {
    if (options?.timeoutMs !== undefined) return this.#getWithin(options.timeoutMs);
    if (this.isClosed()) return Promise.reject(this.closedError());
    if (this.held) {
      return new Promise((resolve, reject) => {
        this.#held.push({ resolve, reject });
        this.onHeld?.();
      });
    }
    if (this.#waiters.length === 0) {
      try {
        let value = this.#take();
        // Spin briefly before sleeping: a wake-up across cores costs ~25 µs, a message that is
        // about to arrive costs a few loads.
        for (let i = 0; i < this.#spinBudget && value === undefined; i++) {
          relax();
          if (this.#hasData()) value = this.#take();
        }
        if (value !== undefined) return Promise.resolve(value);
        if (this.#sourcesGone()) return Promise.reject(this.#goneError());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      if (!this.#looping) void this.#wait();
    });
  }

  /** `get()` that gives up after `ms` (kept apart so the common `get()` stays as lean as it is). */
  #getWithin(ms: number): Promise<unknown> {
    const invalid = getTimeoutError(this.name, ms);
    if (invalid !== undefined) return Promise.reject(invalid);
    if (this.isClosed()) return Promise.reject(this.closedError());
    if (!this.held && this.#waiters.length === 0) {
      try {
        const value = this.#take();
        if (value !== undefined) return Promise.resolve(value);
        if (this.#sourcesGone()) return Promise.reject(this.#goneError());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      // Out of the queues first, so no message can be handed to a get that has given up.
      const timer = setTimeout(() => {
        for (const queue of [this.#waiters, this.#held]) {
          const index = queue.indexOf(waiter);
          if (index !== -1) queue.splice(index, 1);
        }
        reject(new LinkTimeoutError(`no message on ${this.name} within ${ms} ms`));
      }, ms);
      if (this.held) {
        this.#held.push(waiter);
        this.onHeld?.();
      } else {
        this.#waiters.push(waiter);
        if (!this.#looping) void this.#wait();
      }
    });
  }

  tryGet(): unknown {
    if (this.isClosed()) throw this.closedError();
    // A pending get() comes first; handing this message to tryGet would break FIFO for it. A held
    // link hands out nothing.
    if (this.#waiters.length > 0 || this.held) return undefined;
    return this.#take();
  }

  size(): number {
    let total = 0;
    for (const { header } of this.#rings) {
      const waiting = (Atomics.load(header, WRITTEN) - Atomics.load(header, READ_COUNT)) | 0;
      if (waiting > 0) total += waiting;
    }
    return total;
  }

  hold(onHeld: () => void): void {
    if (this.closedHere) return;
    this.onHeld = onHeld;
    if (this.#waiters.length > 0) {
      // Pending gets take no message while held; the sleeping loop is woken and ends.
      this.#held.push(...this.#waiters.splice(0));
      if (this.#looping) wake(this.#bell, BELL_SEQ);
    }
    // Also when held already (a stop after a pause): the get parked then still waits.
    if (this.#held.length > 0) onHeld();
  }

  release(): void {
    this.onHeld = undefined;
    // The held gets go on in order, as the same waiters (a get with a timeout can still withdraw its own).
    const held = this.#held.splice(0);
    if (held.length === 0) return;
    this.#waiters.push(...held);
    if (!this.#looping) void this.#wait();
  }

  close(): void {
    if (this.closedHere) return;
    this.closedHere = true;
    for (const { header } of this.#rings) {
      Atomics.store(header, CONSUMER_CLOSED, 1);
      // A producer sleeping for room must see that this sink no longer takes messages.
      wake(header, SPACE_SEQ);
    }
    this.#rejectAll(this.closedError());
  }

  #rejectAll(error: Error): void {
    const waiters = [...this.#held.splice(0), ...this.#waiters.splice(0)];
    for (const waiter of waiters) waiter.reject(error);
    // Wake our own sleeping loop so it sees that nobody waits any more (and ends).
    if (this.#looping) wake(this.#bell, BELL_SEQ);
  }

  /** Whether any ring has a record, from fresh loads (the sleep protocol needs them fresh). */
  #hasData(): boolean {
    for (const ring of this.#rings) {
      ring.write = Atomics.load(ring.header, WRITE);
      if (ring.write !== Atomics.load(ring.header, READ)) return true;
    }
    return false;
  }

  /** True once every ring's producer is gone and no ring holds a message. */
  #sourcesGone(): boolean {
    for (const { header } of this.#rings) if (Atomics.load(header, PRODUCER_CLOSED) === 0) return false;
    return !this.#hasData();
  }

  #goneError(): LinkSourcesGoneError {
    const peers = this.#rings.map((ring) => ring.peer).join(', ');
    return new LinkSourcesGoneError(
      `link "${this.label}": every source (${peers}) is gone — its actor failed or died — and no message is left; no more will come. Catch LinkSourcesGoneError to go on without this input`,
    );
  }

  /** The next message of the next non-empty ring (round-robin), or `undefined`. */
  #take(): unknown {
    const rings = this.#rings;
    const count = rings.length;
    for (let k = 0; k < count; k++) {
      let index = this.#next + k;
      if (index >= count) index -= count;
      const value = this.#read(rings[index]!);
      if (value !== undefined) {
        this.#next = index + 1 === count ? 0 : index + 1;
        return value;
      }
    }
    return undefined;
  }

  /**
   * Takes the oldest message of `ring`, or `undefined` when the ring is empty (msgpack decodes nil
   * as null, so a message is never `undefined`).
   *
   * A typical message is decoded in place by the fast path, which builds every value it returns.
   * Anything else is copied out into unshared memory first, and that copy is needed, not a
   * convenience: msgpack returns `bin` values as views of its input, which must not alias ring
   * memory the producer reuses; and `TextDecoder` refuses shared memory in Deno and browsers.
   * Either way, under `drop-oldest` the producer may overwrite the record while we read it, so what
   * we read is only trusted once the read index was advanced past it by our own compare-exchange.
   */
  #read(ring: InRing): unknown {
    const header = ring.header;
    for (;;) {
      const read = Atomics.load(header, READ);
      let used = (ring.write - read) | 0;
      // The cached WRITE says empty (or is older than a READ the drop-oldest producer advanced).
      if (used <= 0) {
        ring.write = Atomics.load(header, WRITE);
        used = (ring.write - read) | 0;
        if (used === 0) return undefined;
      }
      const position = read & ring.mask;
      const length = ring.data32[position >> 2]!;
      if (length < 0 || length > ring.maxLength || recordBytes(length) > used) {
        // Under drop-oldest the producer dropped this record and reused its bytes: read again.
        if (ring.dropOldest && Atomics.load(header, READ) !== read) continue;
        throw new Error(
          `link "${this.label}": corrupt record from "${ring.peer}" (length ${length} at byte ${position}); ` +
            'the ring was written by something other than its one producer — open each descriptor once',
        );
      }
      const start = (position + PREFIX_BYTES) & ring.mask;
      // The fast path reads contiguous bytes; a record that wraps around the ring's end is rare.
      const value =
        start + length <= ring.size ? this.#fast.decode(ring.data8, ring.view, start, start + length) : DECLINED;
      const bytes = value === DECLINED ? this.#copyOut(ring, start, length) : undefined;
      const next = (read + recordBytes(length)) | 0;
      if (ring.dropOldest) {
        // Lost the race against the producer dropping this record: it is gone, take the next one.
        if (Atomics.compareExchange(header, READ, read, next) !== read) continue;
      } else {
        Atomics.store(header, READ, next);
      }
      Atomics.add(header, READ_COUNT, 1);
      // Every freed slot wakes a sleeping producer: waking it only after a batch would keep a put
      // blocked while there is room, and a pipeline whose consumer reads one message and then waits
      // for that producer would deadlock. The producer's spin absorbs most wakes of a fast consumer.
      // While the flag stays up, every read rings again: a wake-up is never left to one notify (a
      // version that took the flag down at the first ring hung a fan-in test once under load).
      if (Atomics.load(header, PRODUCER_SLEEPING) !== 0) wake(header, SPACE_SEQ);
      return bytes === undefined ? value : this.#decoder.decode(bytes);
    }
  }

  /**
   * Copies a record into the slab: an ordinary ArrayBuffer filled front to back and never reused, so a
   * decoded `bin` value (a view of the decoder's input) stays valid; a full slab is replaced and lives
   * on only while such a view does. One slab instead of a buffer per record because V8 keeps small
   * typed arrays on its heap and msgpack's decoder touches `.buffer`, which moves each one off the
   * heap — that cost more than the whole ring operation.
   */
  #copyOut(ring: InRing, start: number, length: number): Uint8Array {
    let offset = this.#slabUsed;
    if (offset + length > this.#slab.length) {
      this.#slab = new Uint8Array(Math.max(SLAB_BYTES, length));
      offset = 0;
    }
    const slab = this.#slab;
    const first = ring.size - start;
    if (length <= first) {
      slab.set(ring.data8.subarray(start, start + length), offset);
    } else {
      slab.set(ring.data8.subarray(start), offset);
      slab.set(ring.data8.subarray(0, length - first), offset + first);
    }
    this.#slabUsed = offset + length;
    return slab.subarray(offset, offset + length);
  }

  /** Serves pending `get()` calls, sleeping on the doorbell while every ring is empty. */
  async #wait(): Promise<void> {
    this.#looping = true;
    const bell = this.#bell;
    try {
      while (this.#waiters.length > 0) {
        if (this.isClosed()) {
          this.#rejectAll(this.closedError());
          break;
        }
        let value: unknown;
        try {
          value = this.#take();
        } catch (error) {
          this.#waiters.shift()!.reject(error);
          continue;
        }
        if (value !== undefined) {
          this.#waiters.shift()!.resolve(value);
          continue;
        }
        if (this.#sourcesGone()) {
          this.#rejectAll(this.#goneError());
          break;
        }
        // Flag first, then re-check: a producer that publishes after our check sees the flag and
        // rings (both sides use sequentially consistent atomics, so one of them sees the other).
        Atomics.store(bell, BELL_SLEEPING, 1);
        const seq = Atomics.load(bell, BELL_SEQ);
        if (!this.#hasData() && !this.isClosed() && !this.#sourcesGone()) {
          // waitAsync, never the blocking Atomics.wait: the actor's worker must keep handling
          // control messages (pause, stop, quit) while runStep awaits get().
          // A pending waitAsync does not keep a worker alive (Node, Bun and Deno alike); the actor's
          // control port does, so a waiting actor's worker does not exit under us.
          const result = Atomics.waitAsync(bell, BELL_SEQ, seq);
          if (result.async) {
            const slept = performance.now();
            await result.value;
            this.#spinBudget =
              performance.now() - slept < SHORT_SLEEP_MS
                ? Math.min(this.spin * SPIN_STREAMING, 2 * this.#spinBudget)
                : this.spin;
          }
        }
        Atomics.store(bell, BELL_SLEEPING, 0);
      }
    } finally {
      this.#looping = false;
    }
  }
}
