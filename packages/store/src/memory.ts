/**
 * The `memory` store driver: one SharedArrayBuffer arena shared by every worker of the process.
 * Typed arrays are stored raw and read back as zero-copy views; any other value is msgpack-encoded.
 *
 * @example
 * ```ts
 * import { createMemoryStore } from '@improv/store';
 *
 * const store = await createMemoryStore().open({ sizeBytes: 256 * 1024 * 1024 });
 * const key = await store.client.put(new Float32Array(512 * 512), { shape: [512, 512] });
 * const frame = await store.client.get<Float32Array>(key); // a view of the shared arena
 * await store.client.delete(key);
 * await store.close();
 * ```
 * @module
 */
import {
  type AllocateOptions,
  type Allocation,
  type ConnectStore,
  DEFAULT_STORE_LEASE_MS,
  dtypeCodeOf,
  dtypeCodeOfKind,
  formatBytes,
  type ObjectNotFoundError,
  type OpenStore,
  objectNotFound,
  ofDtype,
  type PutOptions,
  type ShapedArray,
  type StoreClient,
  type StoreDescriptor,
  type StoredInfo,
  type StoreEviction,
  StoreFullError,
  type StoreKey,
  type StoreOpenOptions,
  type StoreSizeLimits,
  type StoreUsage,
  type TypedArray,
  type TypedArrayKind,
  type TypedArrayKinds,
  typedArrayConstructors,
  typedArrayKinds,
} from '@improv/core';
import {
  Arena,
  createArenaBuffers,
  type FullReport,
  GENERATION_MASK,
  isArenaBuffers,
  MAX_ARENA_BYTES,
  MIN_BLOCK_UNITS,
  type RecoveryReport,
  UNIT,
} from './_arena.ts';
import { checkDimension, checkShape, decodeValue, encodeShared } from './_codec.ts';

export type { RecoveryReport } from './_arena.ts';

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Most values the store holds at once. Default: one per KiB of `sizeBytes`, at least 1024 and at
   * most 4 Mi. Each costs 68 bytes of index memory.
   */
  maxObjects?: number;
  /**
   * How long a client waits for the allocator lock before it gives up with an error naming the
   * holder (whose worker then most likely died inside the store). Default 10 000 ms.
   */
  lockTimeoutMs?: number;
}

/** The descriptor of a memory store, as it crosses worker boundaries. */
export interface MemoryStoreDescriptor extends StoreDescriptor {
  driver: 'memory';
  /** Allocator, slot table, lists and lock. */
  meta: SharedArrayBuffer;
  /** The values. */
  arena: SharedArrayBuffer;
  /** Expiry and "held until" times of the values. */
  times: SharedArrayBuffer;
  /** Prefix of every key of this store, so a key of another store or run is recognised. */
  keyPrefix: string;
  lockTimeoutMs: number;
  /** How long a hold protects a value without renewal, in ms (`StoreOpenOptions.leaseMs`). */
  leaseMs: number;
}

/** A memory store client; `ownerId` identifies it for {@link MemoryOpenStore.recoverFromDeadOwner}. */
export interface MemoryStoreClient extends StoreClient {
  /** Id of this client in the store's lock and reservations (≥ 1, unique within the store). */
  readonly ownerId: number;
  isIdle(): boolean;
}

/** A memory store opened by {@link createMemoryStore}. */
export interface MemoryOpenStore extends OpenStore {
  readonly descriptor: MemoryStoreDescriptor;
  readonly client: MemoryStoreClient;
  /**
   * Call when a worker died (its `ownerId` came from its client): if it died holding the allocator
   * lock, the lock is taken back and the allocator rebuilt from the key index; values it had
   * reserved but not finished writing, and a value it died deleting, are freed. Values it stored
   * stay until deleted; its holds lapse after the lease time.
   */
  recoverFromDeadOwner(ownerId: number): RecoveryReport;
}

/** The memory store driver, with the options it was created with. */
export interface MemoryStoreDriver {
  readonly specificationVersion: 1;
  readonly name: 'memory';
  /** Shared by the workers of one process. */
  readonly reach: 'process';
  /** Typed arrays are read and allocated as views of the shared arena. */
  readonly zeroCopy: true;
  /**
   * Creates a store of `sizeBytes` (8-byte units; at most 16 GiB), with `eviction` and `leaseMs`
   * as {@link StoreOpenOptions} describes them.
   */
  open(options: StoreOpenOptions): Promise<MemoryOpenStore>;
  /** 64 bytes to 16 GiB - 8 B. */
  readonly sizeLimits: StoreSizeLimits;
}

const DEFAULT_LOCK_TIMEOUT_MS = 10_000;
const MIN_SIZE_BYTES = 64;
const STORE = 'memory store';
/** Value header: kind/ndim word, spare word, byte length (2 words); then one unit per dimension. */
const VALUE_HEADER_UNITS = 2;
/**
 * Period of the expiry timer of an open store. A pass costs one load when no value has a TTL, and
 * walks only the values with one when some is due.
 */
const REAP_INTERVAL_MS = 50;
/** A client sweeps its lapsed holds once it keeps this many (and then twice as many as remain). */
const SWEEP_MIN_HOLDS = 1024;

/**
 * Creates the `memory` driver: a shared-memory arena for all workers of one process.
 *
 * @example
 * ```ts
 * const nexus = await createNexus({ config: 'pipeline.yaml', store: createMemoryStore(), ... });
 * ```
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryStoreDriver {
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  if (!(lockTimeoutMs > 0)) {
    throw new RangeError(`memory store: lockTimeoutMs must be a positive number of milliseconds, got ${lockTimeoutMs}`);
  }
  if (options.maxObjects !== undefined && !(Number.isSafeInteger(options.maxObjects) && options.maxObjects >= 1)) {
    throw new RangeError(`memory store: maxObjects must be a positive integer, got ${options.maxObjects}`);
  }
  return {
    specificationVersion: 1,
    sizeLimits: { driver: 'memory', minBytes: MIN_SIZE_BYTES, maxBytes: MAX_ARENA_BYTES },
    name: 'memory',
    reach: 'process',
    zeroCopy: true,
    async open({ sizeBytes, eviction, leaseMs }) {
      const totalUnits = arenaUnits(sizeBytes);
      const evictOldest = evictionOf(eviction);
      const lease = leaseOf(leaseMs);
      const slotCount = options.maxObjects ?? Math.min(Math.max(Math.floor(sizeBytes / 1024), 1024), 4 * 1024 * 1024);
      let buffers: ReturnType<typeof createArenaBuffers>;
      try {
        buffers = createArenaBuffers(totalUnits, slotCount, evictOldest);
      } catch (error) {
        throw new RangeError(
          `memory store: cannot allocate ${formatBytes(totalUnits * UNIT)} of shared memory for settings.store_size (${error instanceof Error ? error.message : String(error)}). Lower settings.store_size, or free memory on this machine`,
          { cause: error },
        );
      }
      const descriptor: MemoryStoreDescriptor = {
        module: import.meta.url,
        driver: 'memory',
        meta: buffers.meta,
        arena: buffers.arena,
        times: buffers.times,
        keyPrefix: newKeyPrefix(),
        lockTimeoutMs,
        leaseMs: lease,
      };
      const client = new SharedMemoryClient(descriptor);
      // Frees expired values once nobody holds them, and blocks deleted while nobody puts. It must
      // not keep the process alive: unref'd (Node, Bun), or through Deno.unrefTimer (a number there).
      const timer: unknown = setInterval(() => client.tick(), REAP_INTERVAL_MS);
      (timer as { unref?(): void }).unref?.();
      if (typeof timer === 'number') {
        (globalThis as { Deno?: { unrefTimer?(id: number): void } }).Deno?.unrefTimer?.(timer);
      }
      let closed = false;
      return {
        descriptor,
        client,
        recoverFromDeadOwner: (ownerId) => client.recover(ownerId),
        async close() {
          if (closed) return;
          closed = true;
          clearInterval(timer as ReturnType<typeof setInterval>);
          client.arena.markClosed();
          await client.close();
        },
      };
    },
  };
}

/** Builds a client from a memory store descriptor, in any worker of the process that opened it. */
export const connectStore: ConnectStore = async (descriptor) => {
  if (
    descriptor.driver !== 'memory' ||
    !isArenaBuffers(descriptor) ||
    typeof descriptor.keyPrefix !== 'string' ||
    typeof descriptor.leaseMs !== 'number'
  ) {
    throw new TypeError(
      `memory store: connectStore got a descriptor of driver "${String(descriptor.driver)}" that is not an open memory store (it needs the meta, arena and times SharedArrayBuffers); pass the descriptor of createMemoryStore().open() unchanged`,
    );
  }
  return new SharedMemoryClient(descriptor as MemoryStoreDescriptor);
};

function arenaUnits(sizeBytes: number): number {
  if (typeof sizeBytes !== 'number' || !Number.isFinite(sizeBytes) || sizeBytes < MIN_SIZE_BYTES) {
    throw new RangeError(
      `memory store: settings.store_size must be a number of bytes of at least ${MIN_SIZE_BYTES}, got ${String(sizeBytes)}`,
    );
  }
  if (sizeBytes > MAX_ARENA_BYTES) {
    throw new RangeError(
      `memory store: settings.store_size of ${sizeBytes} bytes (${formatBytes(sizeBytes)}) is over the limit of ${MAX_ARENA_BYTES} bytes (16 GiB - 8 B) of the memory driver. Lower settings.store_size`,
    );
  }
  return Math.floor(sizeBytes / UNIT);
}

/** True for `oldest`, false for `none` or nothing. */
function evictionOf(eviction: StoreEviction | undefined): boolean {
  if (eviction === undefined || eviction === 'none') return false;
  if (eviction === 'oldest') return true;
  throw new RangeError(`memory store: settings.store_eviction must be "none" or "oldest", got "${String(eviction)}"`);
}

/** `leaseMs`, checked, or the default. */
function leaseOf(leaseMs: number | undefined): number {
  if (leaseMs === undefined) return DEFAULT_STORE_LEASE_MS;
  if (typeof leaseMs !== 'number' || !Number.isFinite(leaseMs) || leaseMs <= 0) {
    throw new RangeError(
      `memory store: leaseMs must be a positive, finite number of milliseconds, got ${String(leaseMs)}; leave it out for the default of ${DEFAULT_STORE_LEASE_MS} ms`,
    );
  }
  return leaseMs;
}

/** The `Date.now()` deadline of a `ttlMs` option, or 0 without one. */
function expiryOf(ttlMs: number | undefined, method: string): number {
  if (ttlMs === undefined) return 0;
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError(
      `memory store: ${method}: ttlMs must be a positive, finite number of milliseconds, got ${String(ttlMs)}; leave it out for a value that lives until deleted`,
    );
  }
  return Date.now() + ttlMs;
}

function newKeyPrefix(): string {
  const random = new Uint32Array(2);
  crypto.getRandomValues(random);
  return `m${random[0]!.toString(36)}${random[1]!.toString(36)}-`;
}

/** One hold of a client: its share of the slot's hold count. */
interface Hold {
  slot: number;
  generation: number;
  /** When its lease lapses (`Date.now()` ms). */
  until: number;
  /** Taken or renewed by a read. */
  read: boolean;
  /** Taken by `allocate()`, until `flush()`. */
  allocated: boolean;
}

class SharedMemoryClient implements MemoryStoreClient {
  readonly ownerId: number;
  readonly arena: Arena;
  private readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;
  private readonly keyPrefix: string;
  private readonly lockTimeoutMs: number;
  private readonly leaseMs: number;
  private closed = false;
  // Result of the last parseKey() (or publish()); read synchronously right after, before any await.
  private slot = 0;
  private generation = 0;
  /** Byte length of the value being reserved, for the message of a `StoreFullError`. */
  private pendingBytes = 0;
  private readonly onFull: (report: FullReport) => never;
  /** The values this client holds (one count each in the shared hold word), by key. */
  private readonly holds = new Map<StoreKey, Hold>();
  private sweepAt = SWEEP_MIN_HOLDS;
  /** Views of the whole arena, by dtype code - 1, made on first use (see put). */
  private readonly views: (TypedArray | undefined)[] = typedArrayConstructors.map(() => undefined);

  constructor(descriptor: MemoryStoreDescriptor) {
    this.arena = new Arena(descriptor);
    this.buffer = descriptor.arena;
    this.words = this.arena.words;
    this.keyPrefix = descriptor.keyPrefix;
    this.lockTimeoutMs = descriptor.lockTimeoutMs;
    this.leaseMs = descriptor.leaseMs;
    this.ownerId = this.arena.newOwnerId();
    this.onFull = (report) => {
      throw new StoreFullError(describeFull(report, this.pendingBytes));
    };
  }

  async put(value: unknown, options?: PutOptions): Promise<StoreKey> {
    this.assertOpen();
    const expiresAt = expiryOf(options?.ttlMs, 'put()');
    const code = dtypeCodeOf(value);
    if (code === 0) {
      if (options?.shape !== undefined) {
        throw new TypeError(
          `memory store: put() got a shape for a value of type ${typeof value}; shapes describe typed arrays only. Drop the shape, or store a typed array`,
        );
      }
      const bytes = encodeShared(value, STORE);
      const slot = this.reserve(bytes.byteLength, 0, expiresAt, 0);
      const data = this.writeHeader(slot, 0, bytes.byteLength, undefined, 0);
      try {
        new Uint8Array(this.buffer, data, bytes.byteLength).set(bytes);
      } catch (error) {
        this.arena.abandon(this.ownerId, slot, this.lockTimeoutMs);
        throw error;
      }
      return this.publish(slot);
    }
    const array = value as TypedArray;
    const shape = options?.shape;
    if (shape !== undefined) checkShape(shape, array.length, 'put()', STORE);
    const ndim = shape === undefined ? 1 : shape.length;
    const slot = this.reserve(array.byteLength, ndim, expiresAt, 0);
    const data = this.writeHeader(slot, code, array.byteLength, shape, array.length);
    try {
      // A view of the same kind, so set() copies raw bytes; and never `array.buffer`, which moves a
      // small array's memory off V8's heap on first use (costlier than the rest of the put). One
      // view of the whole arena per kind, made once: a new view per put costs more than a small copy.
      const target = this.views[code - 1] ?? this.viewOf(code);
      // Both are of kind `code`, which the union of typed array types cannot express.
      (target as Uint8Array).set(array as Uint8Array, data / array.BYTES_PER_ELEMENT);
    } catch (error) {
      this.arena.abandon(this.ownerId, slot, this.lockTimeoutMs);
      throw error;
    }
    return this.publish(slot);
  }

  async allocate<K extends TypedArrayKind>(
    kind: K,
    shapeOrLength: number | readonly number[],
    options?: AllocateOptions,
  ): Promise<Allocation<TypedArrayKinds[K]>> {
    this.assertOpen();
    const expiresAt = expiryOf(options?.ttlMs, 'allocate()');
    const code = dtypeCodeOfKind(kind);
    if (code === 0) {
      throw new TypeError(
        `memory store: allocate() got an unknown kind "${String(kind)}"; use one of ${typedArrayKinds.join(', ')}`,
      );
    }
    let length: number;
    let shape: readonly number[] | undefined;
    if (typeof shapeOrLength === 'number') {
      length = shapeOrLength;
      checkDimension(length, 'length', 'allocate()', STORE);
    } else if (Array.isArray(shapeOrLength)) {
      shape = shapeOrLength;
      length = checkShape(shapeOrLength, undefined, 'allocate()', STORE);
    } else {
      throw new TypeError(
        `memory store: allocate() takes a length or a shape (array of lengths), got ${typeof shapeOrLength}`,
      );
    }
    const ctor = typedArrayConstructors[code - 1]!;
    const byteLength = length * ctor.BYTES_PER_ELEMENT;
    const ndim = shape === undefined ? 1 : shape.length;
    // Where TTL or eviction could free it, held from the start (the hold count starts at 1), so it is
    // never seen unheld before flush(). Otherwise only a delete frees it, as a value put: a hold would
    // change nothing but take the arena's lock (the lock-free reservation is for unheld values) and a
    // map entry until the step ends, millions of them in a long step that allocates as it goes.
    const held = expiresAt > 0 || this.arena.evictOldest;
    const now = held ? Date.now() : 0;
    const until = held ? now + this.leaseMs : 0;
    const slot = this.reserve(byteLength, ndim, expiresAt, until);
    const data = this.writeHeader(slot, code, byteLength, shape, length);
    const array = ofDtype(code, new ctor(this.buffer, data, length)) as TypedArrayKinds[K];
    const key = this.publish(slot);
    if (held) this.keep(key, { slot, generation: this.generation, until, read: false, allocated: true }, now);
    return { key, array, dtype: kind, shape: shape === undefined ? [length] : [...shape] };
  }

  async get<T = unknown>(key: StoreKey): Promise<T> {
    return this.read(key, false) as T;
  }

  async getArray<T extends TypedArray = TypedArray>(key: StoreKey): Promise<ShapedArray<T>> {
    return this.read(key, true) as ShapedArray<T>;
  }

  async info(key: StoreKey): Promise<StoredInfo> {
    this.assertOpen();
    const block = this.find(key);
    const payload = block + 1;
    let code: number;
    let byteLength: number;
    let shape: number[] | undefined;
    try {
      const head = Atomics.load(this.words, 2 * payload);
      code = head & 0xff;
      byteLength = this.byteLengthAt(payload);
      shape = code === 0 ? undefined : this.shapeAt(payload, (head >>> 8) & 0xff);
    } catch (error) {
      // A delete at the same moment may have turned the header into free-list links: that is a
      // missing key (confirm throws ObjectNotFoundError), not a crash.
      this.confirm(key);
      throw error;
    }
    this.confirm(key);
    if (code === 0) return { key, kind: 'value', byteLength };
    const dtype = typedArrayKinds[code - 1];
    if (dtype === undefined || shape === undefined) throw this.corrupt(key, code, byteLength);
    return { key, kind: 'array', dtype, shape, byteLength };
  }

  async has(key: StoreKey): Promise<boolean> {
    this.assertOpen();
    if (!this.parseKey(key) || !this.arena.isLive(this.slot, this.generation, this.ownerId, this.lockTimeoutMs)) {
      return false;
    }
    return !this.arena.isExpired(this.slot, this.generation);
  }

  /** Lock-free (see `Arena.retire`). An expired value is freed too, but it was gone already: false. */
  async delete(key: StoreKey): Promise<boolean> {
    this.assertOpen();
    if (!this.parseKey(key)) return false;
    const slot = this.slot;
    const generation = this.generation;
    const expired = this.arena.isExpired(slot, generation);
    const retired = this.arena.retire(slot, generation, this.ownerId, this.lockTimeoutMs);
    if (this.holds.size > 0) this.holds.delete(key);
    return retired && !expired;
  }

  isKey(value: string): boolean {
    return typeof value === 'string' && this.parseKey(value);
  }

  async flush(): Promise<void> {
    // Zero copy: allocated arrays are the store's memory already. Only their holds end.
    if (this.holds.size === 0) return;
    const now = Date.now();
    for (const [key, hold] of this.holds) {
      if (!hold.allocated) continue;
      hold.allocated = false;
      if (!hold.read) {
        this.arena.unhold(hold.slot, hold.generation, now);
        this.holds.delete(key);
      }
    }
  }

  isIdle(): boolean {
    // Zero copy: nothing is ever waiting to be written; flush() and release() only end holds.
    return this.holds.size === 0;
  }

  async release(key?: StoreKey): Promise<void> {
    if (this.holds.size === 0) return;
    const now = Date.now();
    if (key === undefined) {
      for (const hold of this.holds.values()) this.arena.unhold(hold.slot, hold.generation, now);
      this.holds.clear();
      this.sweepAt = SWEEP_MIN_HOLDS;
      return;
    }
    const hold = this.holds.get(key);
    if (hold === undefined) return;
    this.arena.unhold(hold.slot, hold.generation, now);
    this.holds.delete(key);
  }

  async track(keys: readonly StoreKey[], delta: number): Promise<void> {
    if (!Array.isArray(keys)) {
      throw new TypeError(`memory store: track() takes an array of keys, got ${typeof keys}`);
    }
    if (!Number.isSafeInteger(delta)) {
      throw new RangeError(`memory store: track() takes a whole number of messages as delta, got ${String(delta)}`);
    }
    if (delta === 0 || !this.arena.isOpen()) return;
    for (const key of keys) {
      if (typeof key === 'string' && this.parseKey(key)) this.arena.track(this.slot, this.generation, delta);
    }
  }

  async usage(): Promise<StoreUsage> {
    this.assertOpen();
    const { usedUnits, objects } = this.arena.usage(this.ownerId, this.lockTimeoutMs);
    return { usedBytes: usedUnits * UNIT, capacityBytes: this.arena.totalUnits * UNIT, objects };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.release();
    this.closed = true;
    // The blocks and slots it reserved ahead for small puts go back (a client that never closes
    // keeps them, a few KiB, until recoverFromDeadOwner or a full store takes them back).
    if (this.arena.isOpen()) this.arena.dropCache(this.ownerId, this.lockTimeoutMs);
  }

  /** The expiry timer's pass (see `Arena.tick`); the open store calls it from the opener's thread. */
  tick(): void {
    if (this.arena.isOpen()) this.arena.tick(this.ownerId);
  }

  recover(ownerId: number): RecoveryReport {
    if (!Number.isSafeInteger(ownerId) || ownerId < 1 || ownerId === this.ownerId) {
      throw new RangeError(
        `memory store: recoverFromDeadOwner() needs the ownerId of another client (an integer ≥ 1, not ${this.ownerId}), got ${ownerId}`,
      );
    }
    return this.arena.recover(ownerId, this.ownerId, this.lockTimeoutMs);
  }

  // ---- internals -------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) {
      throw new Error('memory store: this client was closed; connect a new one with connectStore(descriptor)');
    }
    if (!this.arena.isOpen()) {
      throw new Error('memory store: the store was closed (its pipeline run ended) and its values are gone');
    }
  }

  private reserve(byteLength: number, ndim: number, expiresAt: number, heldUntil: number): number {
    const units = 2 + VALUE_HEADER_UNITS + ndim + Math.ceil(byteLength / UNIT);
    this.pendingBytes = byteLength;
    return this.arena.reserve(
      this.ownerId,
      Math.max(units, MIN_BLOCK_UNITS),
      this.lockTimeoutMs,
      this.onFull,
      expiresAt,
      heldUntil,
    );
  }

  /** The view of the whole arena as typed arrays of dtype `code` (units are 8 bytes: every kind fits). */
  private viewOf(code: number): TypedArray {
    const ctor = typedArrayConstructors[code - 1]!;
    const view = new ctor(this.buffer, 0, this.buffer.byteLength / ctor.BYTES_PER_ELEMENT);
    this.views[code - 1] = view;
    return view;
  }

  /** Writes the value header of a reserved slot; returns the byte offset of its data. */
  private writeHeader(
    slot: number,
    code: number,
    byteLength: number,
    shape: readonly number[] | undefined,
    length: number,
  ): number {
    const words = this.words;
    const payload = this.arena.blockOf(slot) + 1;
    const ndim = code === 0 ? 0 : shape === undefined ? 1 : shape.length;
    words[2 * payload] = code | (ndim << 8);
    words[2 * payload + 1] = 0;
    words[2 * payload + 2] = byteLength % 0x100000000;
    words[2 * payload + 3] = Math.floor(byteLength / 0x100000000);
    let dimension = 2 * (payload + VALUE_HEADER_UNITS);
    if (code !== 0) {
      if (shape === undefined) {
        words[dimension] = length % 0x100000000;
        words[dimension + 1] = Math.floor(length / 0x100000000);
      } else {
        for (const size of shape) {
          words[dimension] = size % 0x100000000;
          words[dimension + 1] = Math.floor(size / 0x100000000);
          dimension += 2;
        }
      }
    }
    return (payload + VALUE_HEADER_UNITS + ndim) * UNIT;
  }

  private publish(slot: number): StoreKey {
    const generation = this.arena.publish(slot);
    if (generation < 0) {
      throw new Error(
        `memory store: a value being written by client #${this.ownerId} was freed by recoverFromDeadOwner(${this.ownerId}) although this client is alive; call recovery only for workers that have exited`,
      );
    }
    this.generation = generation;
    return `${this.keyPrefix}${slot.toString(36)}.${generation.toString(36)}`;
  }

  /**
   * Splits a key into `this.slot` and `this.generation`. A hand-written parser: it runs on every
   * read and must reject anything that is not exactly a key of this store.
   */
  private parseKey(key: StoreKey): boolean {
    if (typeof key !== 'string') {
      throw new TypeError(
        `memory store: a key must be a string, got ${key === null ? 'null' : typeof key}: pass the key that put() or allocate() returned`,
      );
    }
    // `indexOf` rather than `startsWith`, which costs twice as much on every read and delete; the
    // length check first bounds its search (up to 7 digits of slot, a dot, 6 of generation).
    const prefix = this.keyPrefix;
    if (key.length > prefix.length + 14 || key.indexOf(prefix) !== 0) return false;
    let index = prefix.length;
    let slot = 0;
    let digits = 0;
    for (; index < key.length; index++) {
      const digit = base36(key.charCodeAt(index));
      if (digit < 0) break;
      slot = slot * 36 + digit;
      digits++;
    }
    if (digits === 0 || digits > 7 || key.charCodeAt(index) !== 46 /* . */) return false;
    let generation = 0;
    digits = 0;
    for (index++; index < key.length; index++) {
      const digit = base36(key.charCodeAt(index));
      if (digit < 0) return false;
      generation = generation * 36 + digit;
      digits++;
    }
    if (digits === 0 || digits > 6 || slot >= this.arena.slotCount || generation > GENERATION_MASK) return false;
    this.slot = slot;
    this.generation = generation;
    return true;
  }

  /** The block of a live, unexpired key (parsed into `this.slot`), or `ObjectNotFoundError` naming it. */
  private find(key: StoreKey): number {
    const block = this.parseKey(key)
      ? this.arena.lookup(this.slot, this.generation, this.ownerId, this.lockTimeoutMs)
      : -1;
    if (block < 0 || this.arena.isExpired(this.slot, this.generation)) throw this.notFound(key);
    return block;
  }

  /** Second read of the seqlock: the value was not deleted (and its block reused) while we read it. */
  private confirm(key: StoreKey): void {
    if (!this.arena.isLive(this.slot, this.generation, this.ownerId, this.lockTimeoutMs)) throw this.notFound(key);
  }

  /** The error for a key with no value, saying why where the store knows. */
  private notFound(key: StoreKey): ObjectNotFoundError {
    if (typeof key === 'string' && !key.startsWith(this.keyPrefix)) return objectNotFound('memory', key, 'foreign');
    if (!this.parseKey(key)) return objectNotFound('memory', key, 'unknown');
    return objectNotFound('memory', key, this.arena.missingReason(this.slot, this.generation));
  }

  /**
   * Holds the value of `this.slot`/`this.generation` for this client (renews the lease of a hold it
   * has), or throws `ObjectNotFoundError` when eviction or expiry freed it first.
   */
  private takeHold(key: StoreKey): void {
    const slot = this.slot;
    const generation = this.generation;
    const now = Date.now();
    const until = now + this.leaseMs;
    const held = this.holds.get(key);
    if (held !== undefined) {
      this.arena.renew(slot, until);
      held.until = until;
      held.read = true;
      return;
    }
    if (!this.arena.hold(slot, generation, until)) throw this.notFound(key);
    if (!this.arena.isLive(slot, generation, this.ownerId, this.lockTimeoutMs)) {
      this.arena.unhold(slot, generation, now);
      throw this.notFound(key);
    }
    this.keep(key, { slot, generation, until, read: true, allocated: false }, now);
  }

  /** Records a hold; sweeps out lapsed ones when there are many (code that never calls release). */
  private keep(key: StoreKey, hold: Hold, now: number): void {
    if (this.holds.size >= this.sweepAt) {
      for (const [other, old] of this.holds) {
        if (old.until > now) continue;
        this.arena.unhold(old.slot, old.generation, now);
        this.holds.delete(other);
      }
      this.sweepAt = Math.max(SWEEP_MIN_HOLDS, 2 * this.holds.size);
    }
    this.holds.set(key, hold);
  }

  private corrupt(key: StoreKey, code: number, byteLength: number): Error {
    this.confirm(key);
    return new Error(
      `memory store: the header of key "${key}" is corrupt (kind ${code}, ${byteLength} bytes); something wrote outside its own array`,
    );
  }

  private byteLengthAt(payload: number): number {
    return (
      (Atomics.load(this.words, 2 * payload + 2) >>> 0) +
      (Atomics.load(this.words, 2 * payload + 3) >>> 0) * 0x100000000
    );
  }

  private shapeAt(payload: number, ndim: number): number[] {
    const shape = new Array<number>(ndim);
    let word = 2 * (payload + VALUE_HEADER_UNITS);
    for (let index = 0; index < ndim; index++, word += 2) {
      shape[index] = (Atomics.load(this.words, word) >>> 0) + (Atomics.load(this.words, word + 1) >>> 0) * 0x100000000;
    }
    return shape;
  }

  /**
   * get/getArray: find, hold (see `Arena.hold`), read, mark read. Only TTL and eviction free a
   * value that is not deleted, and only they look at holds and read marks: a value without a TTL in
   * a store without eviction is neither held nor marked (a hold would change nothing but cost a
   * map entry, a clock read and two shared-memory writes on every read).
   */
  private read(key: StoreKey, asArray: boolean): unknown {
    this.assertOpen();
    const block = this.find(key);
    const holds = this.arena.mayFree(this.slot);
    if (holds) this.takeHold(key);
    let value: unknown;
    try {
      value = this.readBlock(key, block, asArray);
    } catch (error) {
      // A header read while the value was being deleted (and its block reused) may be garbage
      // that makes a view or the decoder throw: then the key is gone, and that is the error.
      this.confirm(key);
      throw error;
    }
    if (holds) this.arena.markRead(this.slot, this.generation);
    return value;
  }

  private readBlock(key: StoreKey, block: number, asArray: boolean): unknown {
    const slot = this.slot;
    const payload = block + 1;
    const head = Atomics.load(this.words, 2 * payload);
    const code = head & 0xff;
    const ndim = (head >>> 8) & 0xff;
    const byteLength = this.byteLengthAt(payload);
    const data = (payload + VALUE_HEADER_UNITS + ndim) * UNIT;
    // Bound the header by the block before trusting it (see read()).
    const end = (block + this.arena.blockUnitsOf(slot) - 1) * UNIT;
    if (code > typedArrayConstructors.length || data + byteLength > end) throw this.corrupt(key, code, byteLength);
    if (code === 0) {
      if (asArray) {
        this.confirm(key);
        throw new TypeError(
          `memory store: key "${key}" holds a msgpack value, not a typed array; read it with get(), or check info(key).kind first`,
        );
      }
      // Copy out first, then confirm: decoding straight from shared memory could decode bytes of
      // a value that replaced this one mid-read.
      const bytes = new Uint8Array(byteLength);
      bytes.set(new Uint8Array(this.buffer, data, byteLength));
      this.confirm(key);
      return decodeValue(bytes);
    }
    const ctor = typedArrayConstructors[code - 1]!;
    const array = ofDtype(code, new ctor(this.buffer, data, byteLength / ctor.BYTES_PER_ELEMENT));
    if (!asArray) {
      this.confirm(key);
      return array;
    }
    const shape = this.shapeAt(payload, ndim);
    this.confirm(key);
    return { array, dtype: typedArrayKinds[code - 1]!, shape };
  }
}

function base36(char: number): number {
  if (char >= 48 && char <= 57) return char - 48;
  if (char >= 97 && char <= 122) return char - 87;
  return -1;
}

function describeFull(report: FullReport, valueBytes: number): string {
  // With eviction on, what it could not free: it frees only values read and no longer held.
  const blocked =
    report.held === undefined
      ? ''
      : ` Eviction (settings.store_eviction: oldest) found nothing more it may free: ${plural(report.held, 'value is', 'values are')} held (read in a runStep that has not ended or not released, allocated and not flushed, or waiting in a link) and ${plural(report.unread ?? 0, 'value has', 'values have')} not been read yet.`;
  if (report.reason === 'objects') {
    return `memory store is full: it holds its maximum of ${report.maxObjects} values (the key index has one entry per KiB of settings.store_size, at most 4 Mi, unless createMemoryStore({ maxObjects }) sets it).${blocked} Delete values once every reader is done with them, or allow more with createMemoryStore({ maxObjects }) or a larger settings.store_size`;
  }
  const asked = report.askedUnits * UNIT;
  const free = report.freeUnits * UNIT;
  const largest = report.largestFreeUnits * UNIT;
  const fragmented =
    free >= asked ? `, but the largest free block is ${formatBytes(largest)} (the free space is fragmented)` : '';
  const advice =
    report.held === undefined
      ? 'Raise settings.store_size, or delete values once every reader is done with them'
      : 'Raise settings.store_size, read values (or give them a ttlMs) and release them sooner, or delete values once every reader is done with them';
  return `memory store is full: a value of ${formatBytes(valueBytes)} needs ${formatBytes(asked)} (${asked} bytes with the header), and ${formatBytes(free)} (${free} bytes) of ${formatBytes(report.capacityUnits * UNIT)} is free${fragmented}.${blocked} ${advice}`;
}

/** `1 value is`, `3 values are`. */
function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}
