/**
 * The store contract. Big data goes into a store once; only its key travels over links.
 *
 * A {@link StoreDriver} lives where Nexus runs: it creates the store for one pipeline run and hands
 * out a {@link StoreDescriptor}, a plain serialisable object (shared buffers included) that crosses
 * worker boundaries. Each worker imports `descriptor.module` and calls its exported
 * {@link ConnectStore} function to get a {@link StoreClient}.
 *
 * @example
 * ```ts
 * // producer actor
 * const key = await this.store.put(frame, { shape: [512, 512] });
 * await this.q_out.put({ key });
 * // consumer actor
 * const { key } = await this.q_in.get();
 * const frame = await this.store.get<Float32Array>(key); // zero-copy view for typed arrays
 * await this.store.delete(key);
 * ```
 * @module
 */

/** Every typed array kind the store keeps raw. */
export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** Names of the typed array kinds, as `allocate()` takes them. */
export interface TypedArrayKinds {
  int8: Int8Array;
  uint8: Uint8Array;
  uint8clamped: Uint8ClampedArray;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  float32: Float32Array;
  float64: Float64Array;
  bigint64: BigInt64Array;
  biguint64: BigUint64Array;
  /**
   * numpy's `bool`: one byte per element, 0 or 1, read here as a `Uint8Array`. A value stored (or
   * sent) as `bool`, by a Python actor or by `allocate('bool', …)`, comes to Python as a bool array
   * (a mask), and so does the very array read as `bool` when it is put or sent on; any other
   * `Uint8Array` put or sent from TypeScript (also a copy of one read as `bool`) is `uint8`.
   */
  bool: Uint8Array;
}

/** One of `int8`, `uint8`, ..., `float64`, `bigint64`, `biguint64`, `bool`. */
export type TypedArrayKind = keyof TypedArrayKinds;

/** A store key: an opaque string, safe to send over any link. */
export type StoreKey = string;

/** Options of {@link StoreClient.put}. */
export interface PutOptions {
  /**
   * Shape of n-dimensional data stored in a typed array (row-major). Its product must equal the
   * array's length. Read it back with {@link StoreClient.getArray} or {@link StoreClient.info}.
   */
  shape?: readonly number[];
  /**
   * Time to live in milliseconds. Once it has passed the value is freed — as soon as no reader
   * holds it (see {@link StoreClient.release}) — and a read fails with `ObjectNotFoundError` saying
   * it expired. Default: the value lives until deleted (or evicted, see `store_eviction`).
   */
  ttlMs?: number;
}

/** Options of {@link StoreClient.allocate}. */
export interface AllocateOptions {
  /** Time to live in milliseconds, as in {@link PutOptions.ttlMs}. */
  ttlMs?: number;
}

/** What the store knows of one value. */
export type StoredInfo =
  | {
      key: StoreKey;
      /** A typed array, kept raw. */
      kind: 'array';
      dtype: TypedArrayKind;
      /** The shape given at `put`/`allocate` time, or `[length]`. */
      shape: number[];
      byteLength: number;
    }
  | {
      key: StoreKey;
      /** Any other value, kept msgpack-encoded. */
      kind: 'value';
      byteLength: number;
    };

/** A typed array with its shape. */
export interface ShapedArray<T extends TypedArray = TypedArray> {
  array: T;
  dtype: TypedArrayKind;
  shape: number[];
}

/** A writable array in the store and its key, from {@link StoreClient.allocate}. */
export interface Allocation<T extends TypedArray = TypedArray> extends ShapedArray<T> {
  key: StoreKey;
}

/** Space used in a store. */
export interface StoreUsage {
  /** Bytes held by live values (including per-value overhead). */
  usedBytes: number;
  /** Bytes the store can hold in all. */
  capacityBytes: number;
  /** Number of live values. */
  objects: number;
}

/**
 * What an actor uses: `this.store`. Every method may be called from many workers at once.
 */
export interface StoreClient {
  /**
   * Stores a value and returns its new key. Typed arrays are stored raw; any other value is
   * msgpack-encoded. Throws `StoreFullError` (saying how much was asked and how much is free) when
   * the value does not fit, and `TypeError` for a value that cannot be encoded.
   */
  put(value: unknown, options?: PutOptions): Promise<StoreKey>;
  /**
   * Returns the value under `key`. A zero-copy driver (`memory`) returns a typed array as a view of
   * the store's memory; a copying driver (`lmdb`, `redis`) returns a copy of its own. Either way the
   * read **holds** the value for this client: TTL and eviction never free a held value (an explicit
   * `delete` does). The actor host releases every hold of its actor after each `runStep`; code
   * outside an actor calls {@link release}. Throws `ObjectNotFoundError` naming the key when it was
   * never stored, was deleted, evicted or expired (saying which, where the store knows).
   */
  get<T = unknown>(key: StoreKey): Promise<T>;
  /** Like {@link get} for a typed array, with its dtype and shape (and a hold, as `get`). Throws `TypeError` for other values. */
  getArray<T extends TypedArray = TypedArray>(key: StoreKey): Promise<ShapedArray<T>>;
  /** What is stored under `key`; throws `ObjectNotFoundError` when nothing is. */
  info(key: StoreKey): Promise<StoredInfo>;
  /** True when `key` holds a value. */
  has(key: StoreKey): Promise<boolean>;
  /**
   * Frees the value under `key`. Returns false when there was none. A client connected with
   * `batchDeletes` (see {@link ConnectStoreOptions}) commits deletes together: the key is gone for
   * this client at once, and for the others after the next {@link flush}, at its next write, or a
   * few ms later on its own.
   */
  delete(key: StoreKey): Promise<boolean>;
  /**
   * True when `value` has the form of a key this store handed out (no look-up: the value may have
   * been deleted since). Keys are how messages refer to stored data: a link that drops a message
   * releases the keys of this store it finds in it (see `releaseKeys`), so every driver's keys must
   * be recognisable — e.g. the memory driver's keys start with a random prefix of their store.
   */
  isKey(value: string): boolean;
  /**
   * Reserves a typed array of `kind` and the given length or shape in the store and returns it
   * writable, with its key: write a frame in place, then send the key. The key exists at once
   * (`has`, `info` and `usage` count it; it is held for this client until {@link flush}).
   * - A zero-copy driver (`memory`) hands out the store's own memory: every reader sees each write
   *   as it happens, no copy at all.
   * - A copying driver (`lmdb`, `redis`) hands out an array of this process (one of up to 8 KiB
   *   shares a 64 KiB buffer with others, so one kept array keeps at most 64 KiB alive) and writes it into the
   *   store at {@link flush} — which the actor host calls before any message leaves the actor and
   *   after each `runStep` (a flood's messages and steps share one), so a key sent over a link
   *   always reaches its reader with the frame written. Until then other clients read zeros (or,
   *   from a client connected with `batchPuts`, do not find the key at all); this client reads its
   *   own array.
   */
  allocate<K extends TypedArrayKind>(
    kind: K,
    shapeOrLength: number | readonly number[],
    options?: AllocateOptions,
  ): Promise<Allocation<TypedArrayKinds[K]>>;
  /**
   * Writes into the store every array from {@link allocate} that this client has not written yet,
   * and releases their holds (the arrays stay usable; write again and flush again to update the
   * value). Resolves at once when there is nothing to write (always, for a zero-copy driver).
   * A copying driver bounds what each flush compares: it writes again the array it flushed last,
   * whatever its size, and older ones while they are alive, up to 16 arrays and 4 MiB in all besides
   * the last (the oldest go first). An older array written after that is not flushed again:
   * allocate a new one per frame, as sources do.
   * A client that batches puts writes their values too, and one that batches deletes commits them,
   * unless `options.deletes` is false.
   */
  flush(options?: FlushOptions): Promise<void>;
  /**
   * True when {@link flush} has something to write or commit now (a copying driver: puts, arrays or
   * deletes of this client not written yet, or arrays it follows). The actor host then lets a flood
   * of messages wait for one flush instead of flushing before each; without it, it flushes before
   * each message.
   */
  hasUnflushed?(): boolean;
  /**
   * Ends this client's hold on `key` (every hold, when `key` is omitted): from now on TTL and
   * eviction may free it. A zero-copy view of a released value must not be used after it may have
   * been freed. Holds also lapse after the store's lease time (`StoreOpenOptions.leaseMs`), so a
   * client that died holding values does not pin them for ever.
   */
  release(key?: StoreKey): Promise<void>;
  /**
   * True when {@link flush} and {@link release} have nothing to do now: this client holds no value
   * and has nothing to write or commit. The actor host then skips both after a step (each costs a
   * promise and a turn of the microtask queue, a fifth of a small message's way through a worker).
   * Optional: without it, the host calls both after every step.
   */
  isIdle?(): boolean;
  /**
   * Counts `delta` messages that carry each of `keys` into (positive) or out of (negative) link
   * queues. Eviction never frees a value with a message still waiting in a link for its reader, nor
   * one nobody has read yet. The actor host calls it when `store_eviction` is on: +sinks when a
   * message with keys is sent, -1 when one is taken (the taker then holds the keys until its
   * `runStep` ends) or dropped. Keys of other stores are ignored.
   */
  track(keys: readonly StoreKey[], delta: number): Promise<void>;
  /** Space used right now. */
  usage(): Promise<StoreUsage>;
  /** Releases this client's resources. The values stay in the store. */
  close(): Promise<void>;
  /**
   * Identifies this client to its store, for drivers that lock shared memory: when the client's
   * worker dies, Nexus passes it to {@link OpenStore.recoverFromDeadOwner}. Absent for drivers that
   * need no recovery.
   */
  readonly ownerId?: number;
}

/**
 * A plain, structured-clonable description of an open store that a worker turns back into a
 * client. `module` is an import specifier (or URL) of a module that exports {@link ConnectStore} as
 * `connectStore`.
 */
export interface StoreDescriptor {
  /** Import specifier or URL of the module exporting `connectStore`. */
  module: string;
  /** Driver name, for messages. */
  driver: string;
  /** Driver-specific data (shared buffers, paths, ports). */
  [key: string]: unknown;
}

/** Options of {@link StoreClient.flush}. */
export interface FlushOptions {
  /**
   * Whether batched deletes are committed too (default true). The actor host passes false after each
   * step: the client commits them within a few ms on its own, and the host flushes them before a
   * message leaves the actor, so its reader finds the keys the actor deleted gone.
   */
  deletes?: boolean;
}

/** Options of {@link ConnectStore}. */
export interface ConnectStoreOptions {
  /**
   * Commit deletes together, where each write is a transaction of its own (lmdb; the other drivers
   * delete at once either way). A delete is then gone for this client at once, and for the others
   * after the next {@link StoreClient.flush}, in the client's next write, or within ~2 ms on its own;
   * many deletes share one commit. The actor host asks for it.
   */
  batchDeletes?: boolean;
  /**
   * Commit puts together, where each write is a transaction of its own (lmdb; the other drivers
   * write at once either way). `put()` then returns its key at once, and the value is written at the
   * client's next {@link StoreClient.flush} or next write, or within ~2 ms on its own; until then
   * only this client reads it. The actor host asks for it, and keeps a message from leaving the
   * actor until the values its keys name are written. A driver ignores it where a put must be
   * written before it resolves (lmdb with `keep: true`: such values survive a crash).
   */
  batchPuts?: boolean;
}

/** What a store module exports as `connectStore`: builds a client from a descriptor in any worker. */
export type ConnectStore = (descriptor: StoreDescriptor, options?: ConnectStoreOptions) => Promise<StoreClient>;

/** {@link StoreDriver.reach}. */
export type StoreReach = 'process' | 'host' | 'network';

/** Options Nexus gives a driver when it opens the store of a pipeline run. */
export interface StoreOpenOptions {
  /** Capacity in bytes (`settings.store_size`). */
  sizeBytes: number;
  /**
   * What to do when a value does not fit (`settings.store_eviction`): `none` (default) throws
   * `StoreFullError`; `oldest` frees the oldest values that were read and are not held (no hold, no
   * message waiting in a link) until the value fits and the store is below its low-water mark
   * (85 %), starting once it is above its high-water mark (95 %). A value nobody has read is never
   * evicted.
   */
  eviction?: StoreEviction;
  /**
   * Longest a hold (a read, an allocation) protects a value from TTL and eviction without being
   * renewed, in ms. Default 60 000. A hold ends earlier with `release()`, `flush()` or the end of
   * the `runStep` that took it.
   */
  leaseMs?: number;
}

/** `settings.store_eviction`. */
export type StoreEviction = 'none' | 'oldest';

/** A store opened for one pipeline run, held by Nexus. */
export interface OpenStore {
  /** Handed to every actor's worker. */
  readonly descriptor: StoreDescriptor;
  /** A client for the thread that opened the store. */
  readonly client: StoreClient;
  /** Frees the store and everything in it. */
  close(): Promise<void>;
  /**
   * Called by Nexus when the worker whose client had `ownerId` died: releases what that client may
   * have held (a lock, half-written values). Returns a report for the log. Optional.
   */
  recoverFromDeadOwner?(ownerId: number): unknown;
}

/** Smallest and largest store a driver can open, in bytes, and the driver's name for messages. */
export interface StoreSizeLimits {
  driver: string;
  minBytes: number;
  maxBytes: number;
}

/** A store implementation, as an embedding program passes it to `createNexus`. */
export interface StoreDriver {
  /** Version of this contract the driver implements. */
  readonly specificationVersion: 1;
  /** Short name: `memory`, `lmdb`, `redis`. */
  readonly name: string;
  /**
   * Who can share the store: the workers of one `process` (`memory`), the processes of one `host`
   * (`lmdb`), or processes on any machine of the `network` (`redis`).
   */
  readonly reach: StoreReach;
  /** True when typed arrays are handed out as views of shared memory (see {@link StoreClient.get}). */
  readonly zeroCopy: boolean;
  /** Creates the store for one pipeline run. */
  open(options: StoreOpenOptions): Promise<OpenStore>;
  /**
   * The store sizes this driver can open (`settings.store_size`), so `improv validate` and
   * `createNexus` refuse any other with the config's file:line:column before anything starts.
   * Absent: any size is tried.
   */
  readonly sizeLimits?: StoreSizeLimits;
}
