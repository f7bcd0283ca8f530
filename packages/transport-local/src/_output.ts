/**
 * The producer side of a local link: encodes each message once and copies it into the ring of
 * every sink. Package-private; built by `openLink`.
 * @module
 */
import {
  type DropReason,
  type LinkHooks,
  LinkMessageTooLargeError,
  MsgpackDecoder,
  type OutputLink,
} from '@improv/core';
import { MessageEncoder } from '@improv/core/codec/fast';
import {
  BELL_SEQ,
  BELL_SLEEPING,
  CONSUMER_CLOSED,
  copyRecord,
  DISCARDED,
  DROPPED,
  type LocalOutDescriptor,
  PAYLOAD,
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

interface OutRing extends RingViews {
  bell: Int32Array<SharedArrayBuffer>;
  capacity: number;
  dropOldest: boolean;
  peer: string;
  /** Our own copies of WRITE, WRITTEN and PAYLOAD: only this producer writes them. */
  write: number;
  written: number;
  payload: number;
  /** Last seen READ and READ_COUNT: reloaded only when they say the ring is full. */
  read: number;
  readCount: number;
}

interface PendingPut {
  bytes: Uint8Array;
  resolve(): void;
  reject(error: unknown): void;
}

// Returned by every put() that completed at once: no promise allocated per message.
const resolved: Promise<void> = Promise.resolve();

/**
 * Puts waiting at once past which a forgotten `await` is suspected: an actor that awaits each put
 * has one waiting at a time (a few with Promise.all).
 */
const PILING_UP = 256;

/** The sending side of a local link. */
export class LocalOutputLink extends LinkSide implements OutputLink {
  readonly direction = 'out' as const;
  readonly #rings: OutRing[];
  /** Largest payload every ring can hold. */
  readonly #maxLength: number;
  readonly #encoder: MessageEncoder;
  /** Puts waiting for room, in call order (FIFO also across concurrent puts). */
  readonly #queue: PendingPut[] = [];
  #pumping = false;
  /** The ring the pump sleeps on, so close can wake it. */
  #sleepingOn: OutRing | undefined;
  /** The first `block` ring found full by the last failed {@link #tryWrite}. */
  #blockedOn: OutRing | undefined;
  /** Whether `drop-oldest` copies dropped records for `hooks.dropped`: with a single sink (no fan-out copy). */
  readonly #reportDrops: boolean;
  /** Whether a fan-out sink's dropped message goes to `hooks.droppedForOneSink`. */
  readonly #reportSinkDrops: boolean;
  #warnedPilingUp = false;

  constructor(descriptor: LocalOutDescriptor, hooks: LinkHooks = {}) {
    super(descriptor, hooks);
    this.#encoder = new MessageEncoder(this.label);
    this.#rings = descriptor.rings.map((info) => {
      const views = ringViews(info.buffer);
      // Continue where the ring stands: a revived actor reopens the descriptor of the one that died.
      return {
        ...views,
        bell: new Int32Array(info.doorbell),
        capacity: info.capacity,
        dropOldest: info.policy === 'drop-oldest',
        peer: info.peer,
        write: Atomics.load(views.header, WRITE),
        written: Atomics.load(views.header, WRITTEN),
        payload: Atomics.load(views.header, PAYLOAD),
        read: Atomics.load(views.header, READ),
        readCount: Atomics.load(views.header, READ_COUNT),
      };
    });
    this.#maxLength = Math.min(...this.#rings.map((ring) => ring.maxLength));
    this.#reportDrops = hooks.dropped !== undefined && this.#rings.length === 1;
    this.#reportSinkDrops = hooks.droppedForOneSink !== undefined && this.#rings.length > 1;
    // A sleeping flag left by a producer killed mid-wait must not make the consumer notify for nothing;
    // and a restarted producer is there again: its sinks wait for it instead of giving up on it.
    for (const { header } of this.#rings) {
      Atomics.store(header, PRODUCER_SLEEPING, 0);
      Atomics.store(header, PRODUCER_CLOSED, 0);
    }
  }

  get sinks(): number {
    return this.#rings.length;
  }

  put(message: unknown): Promise<void> {
    if (this.isClosed()) return Promise.reject(this.closedError());
    let bytes: Uint8Array;
    try {
      bytes = this.#encodeShared(message);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#put(bytes, false);
  }

  /** The message's msgpack bytes, as `put` writes them into the ring (a copy of its own). */
  encode(message: unknown): Uint8Array {
    return this.#encodeShared(message).slice();
  }

  putEncoded(encoded: unknown): Promise<void> {
    if (this.isClosed()) return Promise.reject(this.closedError());
    if (!(encoded instanceof Uint8Array)) {
      return Promise.reject(
        new TypeError(`link "${this.label}": putEncoded() takes what this link's encode() returned (bytes)`),
      );
    }
    // Bytes from elsewhere that no ring can ever hold would wait for room for ever.
    if (encoded.length > this.#maxLength) return Promise.reject(this.#tooLarge(encoded.length));
    return this.#put(encoded, true);
  }

  /**
   * The message encoded, as a view of an encoder's own buffer (valid until the next encoding); throws
   * what `put` rejects with for a message it cannot send.
   */
  #encodeShared(message: unknown): Uint8Array {
    const bytes = this.#encoder.encode(message);
    if (bytes.length > this.#maxLength) {
      // The encoder grew to hold the huge message; do not keep that memory for the link's lifetime.
      this.#encoder.shrink();
      throw this.#tooLarge(bytes.length);
    }
    return bytes;
  }

  /** Writes `bytes` (`owned`: ours to keep, else a view of an encoder's buffer) or waits for room. */
  #put(bytes: Uint8Array, owned: boolean): Promise<void> {
    if (this.#queue.length === 0 && !this.held) {
      if (this.#tryWrite(bytes)) return resolved;
      // Spin briefly before sleeping: a consumer on another core frees room within microseconds,
      // a sleep-and-wake round trip costs ~25 µs.
      for (let i = 0; i < this.spin; i++) {
        relax();
        if (this.#tryWrite(bytes)) return resolved;
      }
    }
    // The encoder's buffer is reused by the next put: keep our own copy while waiting.
    const copy = owned ? bytes : bytes.slice();
    return new Promise((resolve, reject) => {
      this.#queue.push({ bytes: copy, resolve, reject });
      if (this.#queue.length >= PILING_UP) this.#pilingUp();
      if (this.held) this.onHeld?.();
      else if (!this.#pumping) void this.#pump();
    });
  }

  room(): number {
    if (this.isClosed() || this.held || this.#queue.length > 0) return 0;
    let room = Number.POSITIVE_INFINITY;
    for (const ring of this.#rings) {
      if (ring.dropOldest || Atomics.load(ring.header, CONSUMER_CLOSED) !== 0) continue;
      ring.readCount = Atomics.load(ring.header, READ_COUNT);
      room = Math.min(room, ring.capacity - ((ring.written - ring.readCount) | 0));
    }
    return Math.max(0, room);
  }

  hold(onHeld: () => void): void {
    if (this.closedHere) return;
    this.onHeld = onHeld;
    // A waiting put keeps its message and sends it after release (the pump stops at its next turn).
    if (this.#queue.length > 0) onHeld();
  }

  release(): void {
    this.onHeld = undefined;
    if (this.#queue.length > 0 && !this.#pumping) void this.#pump();
  }

  close(): void {
    if (this.closedHere) return;
    this.closedHere = true;
    this.#dropQueued();
  }

  /**
   * Puts still waiting when the link closes resolve unsent; their messages are reported dropped (a
   * waiting message went to no sink at all, so also under fan-out).
   */
  #dropQueued(): void {
    const queue = this.#queue.splice(0);
    for (const pending of queue) {
      this.#reportDropped(pending.bytes, 'closed', true);
      pending.resolve();
    }
    // Wake our own sleeping pump so it sees the empty queue (and ends).
    if (this.#sleepingOn !== undefined) wake(this.#sleepingOn.header, SPACE_SEQ);
  }

  /** Reports a dropped message: `whole` when no sink got it, else one fan-out sink's copy. */
  #reportDropped(bytes: Uint8Array, reason: DropReason, whole: boolean): void {
    const hook = whole ? this.hooks.dropped : this.hooks.droppedForOneSink;
    if (hook === undefined) return;
    try {
      hook(new MsgpackDecoder().decode(bytes), reason);
    } catch {
      // A hook's failure must not break the link; the drop is counted either way.
    }
  }

  #pilingUp(): void {
    if (this.#warnedPilingUp) return;
    this.#warnedPilingUp = true;
    this.hooks.warn?.(
      `link "${this.label}": ${this.#queue.length} put() calls are waiting at once — did you forget \`await\` before this.${this.name}.put()? Each unawaited put keeps its message in memory until the sink has room`,
    );
  }

  #tooLarge(length: number): LinkMessageTooLargeError {
    const smallest = this.#rings.reduce((a, b) => (b.maxLength < a.maxLength ? b : a));
    return new LinkMessageTooLargeError(
      `link "${this.label}": a message of ${length} bytes (msgpack) is larger than the ring to "${smallest.peer}" ` +
        `can ever hold (${smallest.maxLength} bytes); links carry small messages — put big data in the store ` +
        '(`const key = await store.put(data)`) and send its key, or give the transport larger rings ' +
        '(createLocalTransport({ bytesPerMessage, minRingBytes }))',
    );
  }

  /**
   * Writes `bytes` to every sink, or to none: when a `block` ring is full nothing is written, so a
   * held or closed put never reaches only some of the sinks. Room only grows between the check and
   * the write, since this producer is the only one that fills these rings.
   */
  #tryWrite(bytes: Uint8Array): boolean {
    const rings = this.#rings;
    const record = recordBytes(bytes.length);
    for (const ring of rings) {
      if (!ring.dropOldest && !hasRoom(ring, record) && Atomics.load(ring.header, CONSUMER_CLOSED) === 0) {
        this.#blockedOn = ring;
        return false;
      }
    }
    let delivered = 0;
    for (const ring of rings) {
      // A sink that is gone takes nothing: its messages are discarded (and counted) so the others
      // flow on. The sink may also have been revived since the check above (its constructor reopens
      // a full ring): re-check, so a full ring is never written over.
      if (Atomics.load(ring.header, CONSUMER_CLOSED) !== 0 || (!ring.dropOldest && !hasRoom(ring, record))) {
        Atomics.add(ring.header, DISCARDED, 1);
        continue;
      }
      if (ring.dropOldest) this.#makeRoom(ring, record);
      writeRecord(ring, bytes, record);
      delivered += 1;
    }
    // Nobody got it: the whole message is dropped (also under fan-out). Some sinks missed it: each
    // of those copies is dropped for one sink.
    if (delivered === 0) this.#reportDropped(bytes, 'sink-gone', true);
    else if (this.#reportSinkDrops) {
      for (let missed = rings.length - delivered; missed > 0; missed--) this.#reportDropped(bytes, 'sink-gone', false);
    }
    return true;
  }

  /** Writes queued puts as room frees, sleeping on the consumer's progress meanwhile. */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#queue.length > 0 && !this.held) {
        if (this.isClosed()) {
          this.#dropQueued();
          break;
        }
        const head = this.#queue[0]!;
        if (this.#tryWrite(head.bytes)) {
          this.#queue.shift();
          head.resolve();
          continue;
        }
        const ring = this.#blockedOn!;
        const header = ring.header;
        const record = recordBytes(head.bytes.length);
        // Flag first, then re-check: a consumer that frees room after our check sees the flag and
        // wakes us (sequentially consistent atomics on both sides).
        Atomics.store(header, PRODUCER_SLEEPING, 1);
        const seq = Atomics.load(header, SPACE_SEQ);
        if (!hasRoom(ring, record) && Atomics.load(header, CONSUMER_CLOSED) === 0 && !this.isClosed()) {
          this.#sleepingOn = ring;
          // waitAsync, never Atomics.wait: the worker must keep handling control messages while
          // runStep awaits put(). (A pending waitAsync does not keep a worker alive on any runtime; the
          // actor's control port does.)
          const result = Atomics.waitAsync(header, SPACE_SEQ, seq);
          if (result.async) await result.value;
          this.#sleepingOn = undefined;
        }
        Atomics.store(header, PRODUCER_SLEEPING, 0);
      }
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * `drop-oldest`: drops the sink's oldest records until `record` bytes fit. The producer advances
   * the read index with a compare-exchange, as the consumer does, so exactly one of them takes each
   * record; a consumer that lost the race discards what it copied. A dropped message is reported
   * (its store keys are released) when this endpoint has a single sink.
   */
  #makeRoom(ring: OutRing, record: number): void {
    const header = ring.header;
    while (!hasRoom(ring, record)) {
      const read = Atomics.load(header, READ);
      // Empty: only the message count lagged (the consumer advanced READ and not yet READ_COUNT); any
      // record fits an empty ring. Under that same lag we may drop one message more than needed.
      if (read === ring.write) return;
      // Our own record, written before `write` and not yet overwritten: its length is intact.
      const position = read & ring.mask;
      const length = ring.data32[position >> 2]!;
      const bytes =
        this.#reportDrops || this.#reportSinkDrops
          ? copyRecord(ring, (position + PREFIX_BYTES) & ring.mask, length)
          : undefined;
      if (Atomics.compareExchange(header, READ, read, (read + recordBytes(length)) | 0) === read) {
        Atomics.add(header, READ_COUNT, 1);
        Atomics.add(header, DROPPED, 1);
        if (bytes !== undefined) this.#reportDropped(bytes, 'drop-oldest', this.#rings.length === 1);
      }
    }
  }
}

/**
 * Whether a record of `record` bytes fits now, by message count and by bytes. The consumer's indices
 * are only loaded (a cache line from the other core) when the cached ones say the ring is full; they
 * only ever grow, so a stale cache errs on the side of "full".
 */
function hasRoom(ring: OutRing, record: number): boolean {
  if (fitsCached(ring, record)) return true;
  ring.readCount = Atomics.load(ring.header, READ_COUNT);
  ring.read = Atomics.load(ring.header, READ);
  return fitsCached(ring, record);
}

function fitsCached(ring: OutRing, record: number): boolean {
  return ((ring.written - ring.readCount) | 0) < ring.capacity && ring.size - ((ring.write - ring.read) | 0) >= record;
}

function writeRecord(ring: OutRing, bytes: Uint8Array, record: number): void {
  const position = ring.write & ring.mask;
  ring.data32[position >> 2] = bytes.length;
  const start = (position + 4) & ring.mask;
  const first = ring.size - start;
  if (bytes.length <= first) {
    ring.data8.set(bytes, start);
  } else {
    ring.data8.set(bytes.subarray(0, first), start);
    ring.data8.set(bytes.subarray(first), 0);
  }
  ring.written = (ring.written + 1) | 0;
  ring.write = (ring.write + record) | 0;
  ring.payload = (ring.payload + bytes.length) | 0;
  // A counter for metrics only: a plain store (no fence); the reader unwraps it (see PlannedEdge).
  ring.header[PAYLOAD] = ring.payload;
  // Count before bytes, so size() (WRITTEN - READ_COUNT) never goes negative.
  Atomics.store(ring.header, WRITTEN, ring.written);
  Atomics.store(ring.header, WRITE, ring.write);
  // Ring the doorbell only when the consumer said it sleeps: the common case costs one load. Each
  // record written while the flag stays up rings again (the consumer takes it down once it runs): a
  // wake-up is never left to a single notify (see the consumer's side, `_input.ts`).
  if (Atomics.load(ring.bell, BELL_SLEEPING) !== 0) wake(ring.bell, BELL_SEQ);
}
