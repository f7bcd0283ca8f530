/**
 * The `lmdb` store driver: every process of one host shares the store through an LMDB environment
 * (a folder holding `data.mdb` and `lock.mdb`). Typed arrays are stored raw with their dtype and
 * shape, any other value msgpack-encoded; reads return copies. The store can outlive its run
 * (`keep: true`) and be read afterwards by `improv store ls/get` or from Python (see docs/lmdb.md,
 * which also describes the on-disk layout).
 *
 * Durability: a value whose `put()` (or `flush()`) has resolved is in a committed LMDB transaction,
 * written to the file with `pwrite` before the promise resolves, so it survives the writer being
 * killed (SIGKILL included) — except for a client connected with `batchPuts` (an actor's, when the
 * store is not kept), whose puts are written at its next flush, within ~2 ms. It survives a power loss or OS crash only with `sync: true` (each commit
 * then waits for `fsync`). A transaction is all or nothing: a value is never seen torn.
 *
 * @example
 * ```ts
 * import { createLmdbStore } from '@improv/store/lmdb';
 *
 * const store = await createLmdbStore({ path: 'runs/store', keep: true }).open({ sizeBytes: 1 << 30 });
 * const key = await store.client.put(new Float32Array(512 * 512), { shape: [512, 512] });
 * const frame = await store.client.get<Float32Array>(key); // a copy
 * await store.close(); // the values stay in runs/store: improv store ls runs/store
 * ```
 * @module
 */

import { Buffer } from 'node:buffer';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  rmdirSync,
  rmSync,
  statfsSync,
  statSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import {
  type AllocateOptions,
  type Allocation,
  type ConnectStore,
  type ConnectStoreOptions,
  DEFAULT_STORE_LEASE_MS,
  dtypeCodeOf,
  dtypeCodeOfKind,
  EVICTION_HIGH_WATER,
  EVICTION_LOW_WATER,
  type FlushOptions,
  formatBytes,
  ImprovError,
  type MissingReason,
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
  StoreUnavailableError,
  type StoreUsage,
  type TypedArray,
  type TypedArrayKind,
  type TypedArrayKinds,
  typedArrayConstructors,
  typedArrayKinds,
} from '@improv/core';
import { folderProblem, makeFolder } from '@improv/core/runtime/folders';
import { processAlive } from '@improv/core/runtime/pid';
import { type Database, open as openEnvironment, type RootDatabase } from 'lmdb';
import { checkDimension, checkShape, decodeValue, encodeShared, MAX_DIMENSIONS } from './_codec.ts';
import { FollowedArrays, MAX_FOLLOWED } from './_follow.ts';
import {
  DB,
  decodeObjectRecord,
  elementBytes,
  encodeObjectRecord,
  FLAG_UNWRITTEN,
  GONE_EVICTED,
  GONE_EXPIRED,
  headerBytes,
  INDEX_OVERHEAD_BYTES,
  kindOfCode,
  LAYOUT_FORMAT,
  LAYOUT_VERSION,
  MAX_TOMBSTONES,
  META,
  OBJECT_RECORD_BYTES,
  type ObjectRecord,
  RECORD_READ,
  RECORD_UNWRITTEN,
  readHeader,
  readSortKey,
  type SessionRecord,
  type StoreRecord,
  sortKey,
  utf8Bytes,
  utf8BytesInto,
  utf8Text,
  type ValueHeader,
  writeHeader,
} from './_lmdb-format.ts';
import { LocalArrays } from './_local-arrays.ts';

/** Options of {@link createLmdbStore}. */
export interface LmdbStoreOptions {
  /**
   * Folder of the store (`settings.lmdb.path`): created if missing; LMDB keeps `data.mdb` and
   * `lock.mdb` in it. Relative paths are resolved against the working directory.
   */
  path: string;
  /**
   * Keep the store when its run closes it (default false: `data.mdb` and `lock.mdb` are removed, and
   * the folder too when that leaves it empty). A kept store is opened again, values and keys intact,
   * by the next run on the same path, and read by `improv store ls/get <path>` and from Python.
   */
  keep?: boolean;
  /**
   * Wait for each commit to reach the disk (`fsync`), so resolved puts survive a power loss or an OS
   * crash too (default false: they survive the process being killed, not the machine going down).
   * Much slower for small values.
   */
  sync?: boolean;
  /** How often the run's TTL reaper looks for expired values, in ms (default 100). */
  reapIntervalMs?: number;
}

/** The descriptor of an lmdb store: plain JSON, so a worker or another process can connect. */
export interface LmdbStoreDescriptor extends StoreDescriptor {
  driver: 'lmdb';
  /** Absolute path of the store's folder. */
  path: string;
  /** Prefix of every key of this store. */
  keyPrefix: string;
  /** Id of the run that opened the store; a client of another run is refused. */
  session: string;
  sync: boolean;
  /**
   * Whether the store outlives its run (`keep: true`). A client then writes each put before it
   * resolves (`batchPuts` is ignored), so that every value whose put returned survives a crash.
   */
  keep?: boolean;
  leaseMs: number;
  eviction: StoreEviction;
  /** LMDB map size every client opens the environment with. */
  mapSize: number;
  /**
   * Absolute folder of the `lmdb` npm package this driver loads (lmdb-js). A Python actor compiles
   * the LMDB sources it ships (`dependencies/lmdb/libraries/liblmdb`) to open the store with the
   * very LMDB that wrote it (data format 2; see docs/lmdb.md, "Python actors"). Absent when the
   * package's folder cannot be found (a bundled build): Python actors then cannot use the store.
   */
  lmdbPackage?: string;
}

/** A client of an lmdb store. */
export interface LmdbStoreClient extends StoreClient {
  /** Id of this client in the store (holds are recorded under it), unique among its clients. */
  readonly clientId: number;
}

/** An lmdb store opened by {@link createLmdbStore}. */
export interface LmdbOpenStore extends OpenStore {
  readonly descriptor: LmdbStoreDescriptor;
  readonly client: LmdbStoreClient;
}

/** The lmdb store driver. */
export interface LmdbStoreDriver {
  readonly specificationVersion: 1;
  readonly name: 'lmdb';
  readonly reach: 'host';
  readonly zeroCopy: false;
  /** Absolute path of the store's folder. */
  readonly path: string;
  /** Opens (creating or reopening) the store at the driver's path. */
  open(options: StoreOpenOptions): Promise<LmdbOpenStore>;
  /** 4 KiB to 8 TiB. */
  readonly sizeLimits: StoreSizeLimits;
}

const DRIVER = 'lmdb';
const MIN_SIZE_BYTES = 4096;
const MAX_SIZE_BYTES = 2 ** 43;
/** LMDB stores a value's length in 32 bits. */
const MAX_VALUE_BYTES = 0xffffffff - 4096;
const STORE = 'lmdb store';
const DEFAULT_REAP_INTERVAL_MS = 100;
/** A client that batches deletes or puts commits them at most this long after the first one, */
const BATCH_WAIT_MS = 2;
/** at once when this many deletes are staged, */
const BATCH_MAX_DELETES = 256;
/** or this many puts, */
const BATCH_MAX_PUTS = 256;
/**
 * or when their values hold this many bytes in all (a large value's delete is not held back, and a
 * large value's put is written at once).
 */
const BATCH_MAX_BYTES = 1024 * 1024;
/** The first chunk of a client's {@link StagingArena}. */
const ARENA_MIN_BYTES = 64 * 1024;
const MAX_DBS = 16;
/** Reads check that the store's files are still there at most this often (ms); writes, every time. */
const READ_FILES_CHECK_MS = 2;
const MiB = 1024 * 1024;

/**
 * Creates the `lmdb` driver for the store at `options.path`.
 *
 * @example
 * ```ts
 * const nexus = await createNexus({ config: 'pipeline.yaml', store: createLmdbStore({ path: 'store' }), ... });
 * ```
 */
export function createLmdbStore(options: LmdbStoreOptions): LmdbStoreDriver {
  if (typeof options !== 'object' || options === null || typeof options.path !== 'string' || options.path === '') {
    throw new TypeError('lmdb store: createLmdbStore() needs { path }: the folder of the store (settings.lmdb.path)');
  }
  const reapIntervalMs = options.reapIntervalMs ?? DEFAULT_REAP_INTERVAL_MS;
  if (!(reapIntervalMs > 0)) {
    throw new RangeError(`lmdb store: reapIntervalMs must be a positive number of milliseconds, got ${reapIntervalMs}`);
  }
  const path = resolve(options.path);
  const keep = options.keep ?? false;
  const sync = options.sync ?? false;
  let openHere: LmdbOpenStore | undefined;
  return {
    specificationVersion: 1,
    name: 'lmdb',
    reach: 'host',
    zeroCopy: false,
    path,
    sizeLimits: { driver: DRIVER, minBytes: MIN_SIZE_BYTES, maxBytes: MAX_SIZE_BYTES },
    async open(openOptions) {
      if (openHere !== undefined) {
        throw new Error(
          `lmdb store: the store at ${path} is already open in this process (one run at a time per path); close it first, or give another run another path`,
        );
      }
      const opened = await openStore(path, keep, sync, reapIntervalMs, openOptions, () => {
        openHere = undefined;
      });
      openHere = opened;
      return opened;
    },
  };
}

/** Builds a client from an lmdb store descriptor, in any worker or process of the host. */
export const connectStore: ConnectStore = async (descriptor, options?: ConnectStoreOptions) => {
  for (const [option, what] of [
    ['batchDeletes', 'deletes'],
    ['batchPuts', 'puts'],
  ] as const) {
    const value: unknown = options?.[option];
    if (value !== undefined && typeof value !== 'boolean') {
      throw new TypeError(
        `lmdb store: connectStore(descriptor, { ${option} }) takes true or false, not ${String(value)}; true commits ${what} in batches (as an actor's client does), false commits each as it is made`,
      );
    }
  }
  const d = descriptor as Partial<LmdbStoreDescriptor>;
  if (
    d.driver !== 'lmdb' ||
    typeof d.path !== 'string' ||
    typeof d.keyPrefix !== 'string' ||
    typeof d.session !== 'string' ||
    typeof d.leaseMs !== 'number' ||
    typeof d.mapSize !== 'number'
  ) {
    throw new TypeError(
      `lmdb store: connectStore got a descriptor of driver "${String(descriptor.driver)}" that is not an open lmdb store (it needs path, keyPrefix and session); pass the descriptor of createLmdbStore().open() unchanged`,
    );
  }
  if (!existsSync(join(d.path, 'data.mdb'))) {
    throw new StoreUnavailableError(
      `lmdb store: there is no store at ${d.path} (its run ended and removed it, or the folder was deleted)`,
    );
  }
  const handles = openHandles(d.path, { sync: d.sync === true, mapSize: d.mapSize, readOnly: false });
  try {
    return new LmdbClient(handles, d as LmdbStoreDescriptor, {
      batchDeletes: options?.batchDeletes === true,
      // A kept store's values must survive a crash once their put returned.
      batchPuts: options?.batchPuts === true && d.keep !== true,
    });
  } catch (error) {
    await handles.root.close().catch(() => {});
    throw error;
  }
};

// ---- environment ------------------------------------------------------------------------------

type Bytes = Uint8Array;
type Db = Database<Bytes, Bytes>;

interface Handles {
  path: string;
  dataFile: string;
  root: RootDatabase<Bytes, Bytes>;
  values: Db;
  objects: Db;
  order: Db;
  expiry: Db;
  holds: Db;
  gone: Db;
  goneOrder: Db;
  meta: Db;
  /** Identity of data.mdb when opened: a store removed or replaced under the client is noticed. */
  inode: number;
  device: number;
}

function openHandles(path: string, options: { sync: boolean; mapSize?: number; readOnly: boolean }): Handles {
  const environment: Record<string, unknown> = {
    path,
    // Always a folder: lmdb-js would take a path with an extension ("store.lmdb") for a file.
    noSubdir: false,
    maxDbs: MAX_DBS,
    encoding: 'binary',
    keyEncoding: 'binary',
    // Commits resolve once written to the file (pwrite): durable against a process crash. With
    // `sync`, each commit also waits for fsync. overlappingSync would let a commit's meta page
    // lag behind its data for a while; the layout is simpler to reason about (and to read from
    // Python) without it.
    noSync: !options.sync,
    overlappingSync: false,
    // Not MDB_WRITEMAP: it would make commits several times cheaper, but LMDB then sizes data.mdb
    // to the map as a sparse file whose blocks are taken as pages are first written, and a disk that
    // runs full under a running store (after the free-space check at open) would stop the writing
    // process with SIGBUS instead of failing one put with an error. Reserving the blocks first
    // (fallocate) would answer that, but LMDB's WRITEMAP freelist code aborts
    // ("Assertion 'x <= dl[0].mid' failed in mdb_freelist_save()") under this store's several
    // writing processes: tried, and the conformance suite's multi-process case caught it.
    useWritemap: false,
    readOnly: options.readOnly,
  };
  if (options.mapSize !== undefined) environment.mapSize = options.mapSize;
  const root = openEnvironment<Bytes, Bytes>(environment as unknown as Parameters<typeof openEnvironment>[0]);
  try {
    const db = (name: string): Db =>
      root.openDB<Bytes, Bytes>({ name, encoding: 'binary', keyEncoding: 'binary' }) as Db;
    const dataFile = join(path, 'data.mdb');
    const stat = statSync(dataFile);
    return {
      path,
      dataFile,
      root,
      values: db(DB.values),
      objects: db(DB.objects),
      order: db(DB.order),
      expiry: db(DB.expiry),
      holds: db(DB.holds),
      gone: db(DB.gone),
      goneOrder: db(DB.goneOrder),
      meta: db(DB.meta),
      inode: stat.ino,
      device: stat.dev,
    };
  } catch (error) {
    void root.close().catch(() => {});
    throw error;
  }
}

/**
 * Why `data.mdb` is not an LMDB file of data format 2 (what lmdb-js 3 reads), or undefined when it
 * is one (or empty: LMDB sets up an empty file). Checked before LMDB maps the file: lmdb-js crashes
 * the process (SIGSEGV) on some files that are not LMDB environments.
 */
function dataFileProblem(file: string): string | undefined {
  let head: Uint8Array;
  let size: number;
  try {
    size = statSync(file).size;
    if (size === 0) return undefined;
    head = new Uint8Array(64);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, head, 0, 64, 0);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    return `cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`;
  }
  const view = new DataView(head.buffer);
  const MDB_MAGIC = 0xbeefc0de;
  // Format 2 has a 24-byte page header before the meta data, format 1 (LMDB 0.9) a 16-byte one.
  if (view.getUint32(24, true) === MDB_MAGIC && (view.getUint32(28, true) & 0xffff) === 2) {
    const pageSize = view.getUint32(48, true);
    if (pageSize < 512 || size < 2 * pageSize) return `${file} is cut short (${size} bytes)`;
    return undefined;
  }
  if (view.getUint32(16, true) === MDB_MAGIC) {
    return `${file} is an LMDB file of data format ${view.getUint32(20, true) & 0xffff} (LMDB 0.9, as Python's lmdb module writes it); the lmdb store (lmdb-js 3) reads data format 2`;
  }
  return `${file} is not an LMDB file`;
}

/** Largest record built in {@link scratch}; bigger ones get a buffer of their own. */
const MAX_SCRATCH_BYTES = 32 * 1024 * 1024;
let scratchBuffer: Bytes = new Uint8Array(0);

/**
 * The record of a value (its header, then its payload): in `target` (of exactly its length) when
 * given, else in the scratch buffer, valid until the next call, so write it (LMDB copies it) or copy
 * it first.
 */
function valueRecord(
  code: number,
  shape: readonly number[],
  payload: Bytes,
  target?: Bytes,
): { record: Bytes; header: ValueHeader } {
  const size = headerBytes(shape.length);
  const record = target ?? scratch(size + payload.byteLength);
  writeHeader(record, code, shape, payload.byteLength, 0);
  record.set(payload, size);
  return { record, header: { code, shape: [...shape], byteLength: payload.byteLength, flags: 0, headerBytes: size } };
}

/**
 * A buffer of `byteLength` bytes to build a record in, valid until the next call: reused, because
 * LMDB copies a record when it is put, and fresh memory costs a page fault per page on first touch
 * (for a 1 MiB record that took longer than the rest of the flush). Not zeroed: the caller
 * overwrites it whole.
 */
function scratch(byteLength: number): Bytes {
  if (byteLength > MAX_SCRATCH_BYTES) return uninitialized(byteLength);
  if (scratchBuffer.byteLength < byteLength) {
    scratchBuffer = uninitialized(Math.min(MAX_SCRATCH_BYTES, Math.max(byteLength, 2 * scratchBuffer.byteLength)));
  }
  return scratchBuffer.subarray(0, byteLength);
}

/**
 * Memory for the records of a client's staged puts, and for keys that a write or a look-up uses at
 * once, taken one after another from a chunk, and from its start again after a write that left no
 * put staged (nothing else refers to what was taken). Cheaper than new memory each time, which also
 * costs lmdb-js a look-up of its address when written.
 */
class StagingArena {
  private chunk: Bytes = new Uint8Array(0);
  private used = 0;

  /** `byteLength` bytes, not zeroed, valid until {@link reset}. */
  take(byteLength: number): Bytes {
    this.room(byteLength);
    return this.taken(byteLength);
  }

  /** The UTF-8 bytes of `text` (a key), valid until {@link reset}. */
  utf8(text: string): Bytes {
    this.room(3 * text.length);
    return this.taken(utf8BytesInto(text, this.chunk.subarray(this.used)));
  }

  /** Makes room for `byteLength` bytes after the ones taken. */
  private room(byteLength: number): void {
    if (this.used + byteLength <= this.chunk.byteLength) return;
    // Twice as large up to what a batch can stage (puts of small values need far less). The staged
    // puts in the old chunk keep it alive until they are written.
    const size = Math.min(BATCH_MAX_BYTES, Math.max(ARENA_MIN_BYTES, 2 * this.chunk.byteLength));
    this.chunk = uninitialized(Math.max(size, byteLength));
    this.used = 0;
  }

  /** Takes the `byteLength` bytes after the ones taken, which the caller made room for. */
  private taken(byteLength: number): Bytes {
    const bytes = this.chunk.subarray(this.used, this.used + byteLength);
    this.used += (byteLength + 7) & ~7;
    return bytes;
  }

  /** Every record taken was written: the chunk is taken from its start again. */
  reset(): void {
    this.used = 0;
  }
}

/**
 * Where insert() builds the object record and the order key it writes at once (LMDB copies them):
 * new memory for each would cost an allocation, and lmdb-js a look-up of its address.
 */
const objectRecordScratch = new Uint8Array(OBJECT_RECORD_BYTES + headerBytes(MAX_DIMENSIONS));
const sortKeyScratch = new Uint8Array(16);

/**
 * A buffer of `byteLength` bytes that is not zeroed first: for a record or a copy the caller
 * overwrites whole.
 */
function uninitialized(byteLength: number): Bytes {
  const buffer = Buffer.allocUnsafeSlow(byteLength);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, byteLength);
}

/** `lastSize` of lmdb-js: the length of the value the last `getBinaryFast` returned. */
function lastSize(db: Db): number {
  return (db as unknown as { lastSize: number }).lastSize;
}

/**
 * The bytes under `key` as a view valid until the next read of the environment (lmdb-js reuses the
 * buffer, or it is a view of the map): copy what you keep before reading again.
 */
function peek(db: Db, key: Bytes): Bytes | undefined {
  const fast = db.getBinaryFast(key);
  if (fast === undefined) return undefined;
  return new Uint8Array(fast.buffer, fast.byteOffset, lastSize(db));
}

/** A copy in memory of its own (`Buffer#slice` would be a view). */
function copyBytes(bytes: Bytes): Bytes {
  return Uint8Array.prototype.slice.call(bytes);
}

function copyOf(db: Db, key: Bytes): Bytes | undefined {
  const view = peek(db, key);
  return view === undefined ? undefined : view.slice();
}

/** UTF-8 bytes of the meta entries' names (a handful), encoded once: every write reads and writes some. */
const nameBytes = new Map<string, Bytes>();
function metaKey(name: string): Bytes {
  let bytes = nameBytes.get(name);
  if (bytes === undefined) {
    bytes = utf8Bytes(name);
    nameBytes.set(name, bytes);
  }
  return bytes;
}

function readNumber(db: Db, name: string): number {
  const view = peek(db, metaKey(name));
  if (view === undefined || view.byteLength !== 8) return 0;
  return readFloat64(view);
}

function writeNumber(db: Db, name: string, value: number): void {
  db.putSync(metaKey(name), float64Bytes(value));
}

/**
 * The meta counters as one write transaction sees them: each read from the store at most once and
 * the changed ones written back once, just before the commit. A batch of puts would otherwise read
 * and write the same few entries once per value, each a call into LMDB. Safe because a write
 * transaction holds LMDB's writer lock: no other client, process or Python changes them meanwhile.
 */
class MetaCounters {
  private readonly values = new Map<string, number>();
  private readonly changed = new Set<string>();
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  get(name: string): number {
    let value = this.values.get(name);
    if (value === undefined) {
      value = readNumber(this.db, name);
      this.values.set(name, value);
    }
    return value;
  }

  set(name: string, value: number): void {
    this.values.set(name, value);
    this.changed.add(name);
  }

  /** Writes the changed counters (inside the transaction, before it commits). */
  writeBack(): void {
    for (const name of this.changed) writeNumber(this.db, name, this.values.get(name)!);
    this.changed.clear();
  }
}

function readJson<T>(db: Db, name: string): T | undefined {
  const view = peek(db, metaKey(name));
  if (view === undefined) return undefined;
  return JSON.parse(utf8Text(view)) as T;
}

function writeJson(db: Db, name: string, value: unknown): void {
  db.putSync(utf8Bytes(name), utf8Bytes(JSON.stringify(value)));
}

function float64Bytes(value: number): Bytes {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setFloat64(0, value, true);
  return bytes;
}

function readFloat64(view: Bytes): number {
  return new DataView(view.buffer, view.byteOffset, view.byteLength).getFloat64(0, true);
}

/** Key of a hold: the store key, 0x00, the client id (u32 big-endian). */
function holdKey(keyBytes: Bytes, clientId: number): Bytes {
  const bytes = new Uint8Array(keyBytes.byteLength + 5);
  bytes.set(keyBytes);
  new DataView(bytes.buffer).setUint32(keyBytes.byteLength + 1, clientId);
  return bytes;
}

/** [start, end) of every hold of a key. */
function holdRange(keyBytes: Bytes): { start: Bytes; end: Bytes } {
  const start = new Uint8Array(keyBytes.byteLength + 1);
  start.set(keyBytes);
  const end = start.slice();
  end[keyBytes.byteLength] = 1;
  return { start, end };
}

// ---- opening a store --------------------------------------------------------------------------

async function openStore(
  path: string,
  keep: boolean,
  sync: boolean,
  reapIntervalMs: number,
  options: StoreOpenOptions,
  onClosed: () => void,
): Promise<LmdbOpenStore> {
  const sizeBytes = checkSize(options.sizeBytes);
  const eviction = options.eviction ?? 'none';
  if (eviction !== 'none' && eviction !== 'oldest') {
    throw new RangeError(`lmdb store: settings.store_eviction must be "none" or "oldest", got ${String(eviction)}`);
  }
  const leaseMs = options.leaseMs ?? DEFAULT_STORE_LEASE_MS;
  if (typeof leaseMs !== 'number' || !(leaseMs > 0)) {
    throw new RangeError(`lmdb store: leaseMs must be a positive number of milliseconds, got ${String(leaseMs)}`);
  }
  const createdFolder = prepareFolder(path);
  const dataFile = join(path, 'data.mdb');
  const existingBytes = existsSync(dataFile) ? statSync(dataFile).size : 0;
  if (existingBytes > 0) {
    const problem = dataFileProblem(dataFile);
    if (problem !== undefined) {
      throw new Error(`lmdb store: ${problem}; give another path for the store, or move that file away`);
    }
  }
  checkFreeSpace(path, sizeBytes, existingBytes);
  const mapSize = Math.max(2 * sizeBytes + 64 * MiB, existingBytes + 64 * MiB);

  let handles: Handles;
  try {
    handles = openHandles(path, { sync, mapSize, readOnly: false });
  } catch (error) {
    throw describeOpenFailure(path, error);
  }
  const session: SessionRecord = {
    id: randomId(),
    pid: process.pid,
    keep,
    opened: new Date().toISOString(),
  };
  let keyPrefix: string;
  try {
    keyPrefix = handles.root.transactionSync(() => {
      const store = readJson<StoreRecord>(handles.meta, META.store);
      const previous = readJson<SessionRecord>(handles.meta, META.session);
      if (store !== undefined) {
        const refusal = storeRefusal(path, store, previous, keep);
        if (refusal !== undefined) throw new Error(refusal);
        const leftover = previous !== undefined && !previous.keep;
        if (leftover) {
          // A run with keep: false that died before closing: its values were never meant to stay.
          for (const db of [
            handles.values,
            handles.objects,
            handles.order,
            handles.expiry,
            handles.holds,
            handles.gone,
            handles.goneOrder,
            handles.meta,
          ]) {
            db.clearSync();
          }
        }
        if (!leftover) {
          writeNumber(handles.meta, META.capacityBytes, sizeBytes);
          writeJson(handles.meta, META.session, session);
          return store.keyPrefix;
        }
      } else if (previous === undefined && handles.values.getKeysCount() > 0) {
        throw new Error(`lmdb store: ${path} holds LMDB data that is not an improv store; give another path`);
      }
      const created: StoreRecord = {
        format: LAYOUT_FORMAT,
        version: LAYOUT_VERSION,
        keyPrefix: newKeyPrefix(),
        created: new Date().toISOString(),
      };
      writeJson(handles.meta, META.store, created);
      for (const name of [
        META.usedBytes,
        META.objects,
        META.nextClient,
        META.nextSequence,
        META.nextTombstone,
        META.tombstones,
      ]) {
        writeNumber(handles.meta, name, 0);
      }
      writeNumber(handles.meta, META.capacityBytes, sizeBytes);
      writeJson(handles.meta, META.session, session);
      return created.keyPrefix;
    });
  } catch (error) {
    await handles.root.close().catch(() => {});
    if (error instanceof Error && error.message.startsWith('lmdb store:')) throw error;
    throw describeOpenFailure(path, error);
  }
  // Readers left behind by killed processes would keep freed pages from being reused.
  try {
    handles.root.readerCheck();
  } catch {
    // Not essential.
  }

  const descriptor: LmdbStoreDescriptor = {
    module: import.meta.url,
    driver: 'lmdb',
    path,
    keyPrefix,
    session: session.id,
    sync,
    keep,
    leaseMs,
    eviction,
    mapSize,
  };
  const lmdbPackage = lmdbPackageFolder();
  if (lmdbPackage !== undefined) descriptor.lmdbPackage = lmdbPackage;
  let client: LmdbClient;
  try {
    client = new LmdbClient(handles, descriptor);
  } catch (error) {
    await handles.root.close().catch(() => {});
    throw error;
  }
  const reaper = setInterval(() => {
    try {
      client.reapExpired();
    } catch {
      // A store closed or removed under the reaper: close() (or the next call) reports it.
    }
  }, reapIntervalMs);
  (reaper as { unref?: () => void }).unref?.();
  let closing: Promise<void> | undefined;
  return {
    descriptor,
    client,
    close() {
      closing ??= (async () => {
        clearInterval(reaper);
        await client.closeAsOwner();
        if (!keep) removeStoreFiles(path, createdFolder);
        onClosed();
      })();
      return closing;
    },
  };
}

let lmdbPackageCache: string | null | undefined;

/**
 * The folder of the `lmdb` package this module imports (its package.json is not exported, so the
 * entry point is resolved and its folders climbed), or undefined when it cannot be found.
 */
function lmdbPackageFolder(): string | undefined {
  if (lmdbPackageCache === undefined) {
    lmdbPackageCache = null;
    try {
      let folder = dirname(createRequire(import.meta.url).resolve('lmdb'));
      for (;;) {
        const manifest = join(folder, 'package.json');
        if (
          existsSync(manifest) &&
          (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'lmdb'
        ) {
          lmdbPackageCache = folder;
          break;
        }
        const parent = dirname(folder);
        if (parent === folder) break;
        folder = parent;
      }
    } catch {
      // Not resolvable here (a bundled build): the descriptor goes without it.
    }
  }
  return lmdbPackageCache ?? undefined;
}

function checkSize(sizeBytes: unknown): number {
  if (typeof sizeBytes !== 'number' || !Number.isFinite(sizeBytes) || sizeBytes < MIN_SIZE_BYTES) {
    throw new RangeError(
      `lmdb store: settings.store_size must be a number of bytes of at least ${MIN_SIZE_BYTES}, got ${String(sizeBytes)}`,
    );
  }
  if (sizeBytes > MAX_SIZE_BYTES) {
    throw new RangeError(
      `lmdb store: settings.store_size of ${sizeBytes} bytes (${formatBytes(sizeBytes)}) is over the limit of ${MAX_SIZE_BYTES} bytes (8 TiB) of the lmdb driver. Lower settings.store_size`,
    );
  }
  return Math.floor(sizeBytes);
}

/** Creates the store's folder if needed; returns whether it did. Throws a clear error when it cannot. */
function prepareFolder(path: string): boolean {
  try {
    const created = makeFolder(path);
    accessSync(path, constants.R_OK);
    return created;
  } catch (error) {
    throw unwritable(path, error);
  }
}

/**
 * Why a run may not open the store found at `path` (its records `store` and `previous` session),
 * or `undefined`: another layout, a run that has it open now, or a kept store and `keep: false`
 * (which would delete it at its end). A store left by a run with `keep: false` that died is no
 * refusal: its values were never meant to stay, and the run clears them.
 */
function storeRefusal(
  path: string,
  store: StoreRecord,
  previous: SessionRecord | undefined,
  keep: boolean,
): string | undefined {
  if (store.format !== LAYOUT_FORMAT || store.version !== LAYOUT_VERSION) {
    return `lmdb store: ${path} holds an LMDB environment of format ${String(store.format)} version ${String(store.version)}, not an improv store of layout ${LAYOUT_VERSION}; give another path (settings.lmdb.path)`;
  }
  if (previous !== undefined && processAlive(previous.pid)) {
    return `lmdb store: the store at ${path} is in use by another run (process ${previous.pid}, opened ${previous.opened}); give this run another path (settings.lmdb.path), or wait for that run to end`;
  }
  const leftover = previous !== undefined && !previous.keep;
  if (!leftover && !keep) {
    return `lmdb store: ${path} holds a store kept by an earlier run (keep: true); a run with keep: false would delete it at its end. Reopen it with keep: true, move or delete it, or give another path (settings.lmdb.path)`;
  }
  return undefined;
}

/**
 * What opening an lmdb store at `path` with `keep` would refuse, found without creating or changing
 * anything (for `improv validate`): a folder that cannot be made or written, a file that is not a
 * store, or a store that another run has open or that was kept while `keep` is false. The error's
 * message, or `undefined` when it looks usable.
 */
export async function lmdbStoreProblem(path: string, keep: boolean): Promise<string | undefined> {
  const folder = folderProblem(path);
  if (folder !== undefined) return unwritable(path, new Error(folder)).message;
  const dataFile = join(path, 'data.mdb');
  if (!existsSync(dataFile) || statSync(dataFile).size === 0) return undefined;
  const problem = dataFileProblem(dataFile);
  if (problem !== undefined) return `lmdb store: ${problem}; give another path for the store, or move that file away`;
  let handles: Handles;
  try {
    handles = openHandles(path, { sync: false, readOnly: true });
  } catch {
    return undefined; // opening it for the run says what is wrong, with LMDB's own words
  }
  try {
    const store = readJson<StoreRecord>(handles.meta, META.store);
    const previous = readJson<SessionRecord>(handles.meta, META.session);
    return store === undefined ? undefined : storeRefusal(path, store, previous, keep);
  } catch {
    return undefined;
  } finally {
    await handles.root.close().catch(() => {});
  }
}

function unwritable(path: string, error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error);
  return new Error(
    `lmdb store: cannot create or write the store folder ${path} (${reason}). Give a folder this process can create and write (the lmdb store's path)`,
    { cause: error },
  );
}

function describeOpenFailure(path: string, error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error);
  if (/EACCES|EPERM|EROFS|read-only|permission/i.test(reason)) return unwritable(path, error);
  if (/ENOSPC|No space/i.test(reason)) {
    return new StoreFullError(
      `lmdb store: the disk of ${path} is full (${reason}). Free disk space, lower settings.store_size, or put the store on another disk`,
      { cause: error },
    );
  }
  return new Error(`lmdb store: cannot open the LMDB environment at ${path}: ${reason}`, { cause: error });
}

/**
 * Why a store of `sizeBytes` at `path` would not fit on its filesystem (what opening it refuses), or
 * undefined; for `improv validate`. Changes nothing.
 */
export function lmdbFreeSpaceProblem(path: string, sizeBytes: number): string | undefined {
  const dataFile = join(path, 'data.mdb');
  return freeSpaceProblem(path, sizeBytes, existsSync(dataFile) ? statSync(dataFile).size : 0);
}

function checkFreeSpace(path: string, sizeBytes: number, existingBytes: number): void {
  const problem = freeSpaceProblem(path, sizeBytes, existingBytes);
  if (problem !== undefined) throw new RangeError(problem);
}

/**
 * Why a store of `sizeBytes` at `path` does not fit on its filesystem, or undefined. A folder not
 * made yet is measured at its nearest existing parent (where it will be made).
 */
function freeSpaceProblem(path: string, sizeBytes: number, existingBytes: number): string | undefined {
  let free: number;
  try {
    let existing = path;
    while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
    const stats = statfsSync(existing);
    free = Number(stats.bavail) * Number(stats.bsize);
  } catch {
    return undefined; // No statfs here (or not for this filesystem): LMDB reports a full disk when it happens.
  }
  if (sizeBytes - existingBytes <= free) return undefined;
  return `lmdb store: settings.store_size of ${formatBytes(sizeBytes)} (${sizeBytes} bytes) does not fit on the filesystem of ${path}: only ${formatBytes(free)} (${free} bytes) is free${existingBytes > 0 ? ` besides the ${formatBytes(existingBytes)} the store already takes` : ''}. Lower settings.store_size, free disk space, or put the store on another disk`;
}

function removeStoreFiles(path: string, createdFolder: boolean): void {
  for (const name of ['data.mdb', 'lock.mdb']) rmSync(join(path, name), { force: true });
  if (createdFolder) {
    try {
      rmdirSync(path); // only when empty
    } catch {
      // Something else was put into the folder: leave it.
    }
  }
}

function randomId(): string {
  const random = new Uint32Array(3);
  crypto.getRandomValues(random);
  return Array.from(random, (word) => word.toString(36)).join('');
}

function newKeyPrefix(): string {
  const random = new Uint32Array(2);
  crypto.getRandomValues(random);
  return `l${random[0]!.toString(36)}${random[1]!.toString(36)}-`;
}

// ---- the client -------------------------------------------------------------------------------

interface Pending {
  array: TypedArray;
  code: number;
  shape: number[];
  /** An allocation of a client that batches puts: not in the store at all until its first flush. */
  staged?: { ttlMs: number | undefined; charged: number };
}

/** A put of a client that batches puts, not written yet. */
interface StagedPut {
  keyBytes: Bytes;
  /** The value's record (header and bytes): the client's own copy. */
  record: Bytes;
  header: ValueHeader;
  ttlMs: number | undefined;
  /** What the value will take of the store's capacity. */
  charged: number;
}

/** Why the store cannot take a value, for the message of a StoreFullError. */
interface FullReport {
  asked: number;
  valueBytes: number;
  used: number;
  capacity: number;
  eviction: StoreEviction;
  held: number;
  unread: number;
  inFlight: number;
  unwritten: number;
}

type Lookup = { missing: MissingReason } | { record: ObjectRecord };
type ReadResult = { missing: MissingReason } | { value: unknown; header: ValueHeader };

class LmdbClient implements LmdbStoreClient {
  readonly clientId: number;
  private readonly handles: Handles;
  private readonly path: string;
  private readonly keyPrefix: string;
  private readonly session: string;
  private readonly leaseMs: number;
  private readonly eviction: StoreEviction;
  private readonly keyPattern: RegExp;
  private sequence = 0;
  private closed = false;
  private readonly pending = new Map<StoreKey, Pending>();
  /** Allocations flushed before: written again by a later flush when they differ from the store. */
  private readonly followed = new FollowedArrays();
  /** Keys this client has a hold entry for. */
  private readonly held = new Set<StoreKey>();
  /** Whether deletes are staged and committed together (`ConnectStoreOptions.batchDeletes`). */
  private readonly batchDeletes: boolean;
  /** Deletes staged, not committed yet: key → its bytes; the bytes their values hold. */
  private staged = new Map<StoreKey, Bytes>();
  private stagedBytes = 0;
  /** Whether puts are staged and written together (`ConnectStoreOptions.batchPuts`). */
  private readonly batchPuts: boolean;
  /** Puts staged, not written yet, in the order they were made. */
  private stagedPuts = new Map<StoreKey, StagedPut>();
  /** Where the records of staged puts are built. */
  private readonly arena = new StagingArena();
  /** Where the arrays of allocate() come from. */
  private readonly localArrays = new LocalArrays();
  /** What the staged puts and allocations will take of the store's capacity. */
  private stagedPutBytes = 0;
  /** Puts and allocations staged since the last commit. */
  private stagedCount = 0;
  /**
   * Free space at this client's last write, less what it staged since (undefined before its first
   * write): a put that may not fit is written at once, so that a full store throws from `put()`.
   */
  private room: number | undefined;
  /** Staged puts the last write left staged because the store was full, for flush() to report. */
  private unwrittenFull: FullReport | undefined;
  /** The bytes of the session record the last check found this client's; when reads last checked the files. */
  private sessionRecord: Bytes | undefined;
  private filesCheckedAt = Number.NEGATIVE_INFINITY;
  /** The key this client last read without a hold, and what its value takes of the capacity. */
  private lastRead: { key: StoreKey; charged: number } | undefined;
  /** The timer that commits staged deletes and puts. */
  private stagedTimer: ReturnType<typeof setTimeout> | undefined;
  /** The meta counters of the write transaction under way (undefined outside one). */
  private txnCounters: MetaCounters | undefined;

  constructor(
    handles: Handles,
    descriptor: LmdbStoreDescriptor,
    batching: { batchDeletes: boolean; batchPuts: boolean } = { batchDeletes: false, batchPuts: false },
  ) {
    this.handles = handles;
    this.batchDeletes = batching.batchDeletes;
    this.batchPuts = batching.batchPuts;
    this.path = descriptor.path;
    this.keyPrefix = descriptor.keyPrefix;
    this.session = descriptor.session;
    this.leaseMs = descriptor.leaseMs;
    this.eviction = descriptor.eviction === 'oldest' ? 'oldest' : 'none';
    this.keyPattern = new RegExp(`^${escapeRegExp(descriptor.keyPrefix)}[0-9a-z]{1,7}\\.[0-9a-z]{1,11}$`);
    this.clientId = this.write('connectStore', () => {
      const id = this.counters.get(META.nextClient) + 1;
      this.counters.set(META.nextClient, id);
      return id;
    });
  }

  // ---- StoreClient ---------------------------------------------------------------------------

  async put(value: unknown, options?: PutOptions): Promise<StoreKey> {
    this.assertOpen();
    const ttlMs = checkTtl(options?.ttlMs, 'put()');
    const code = dtypeCodeOf(value);
    let payload: Bytes;
    let shape: number[];
    if (code === 0) {
      if (options?.shape !== undefined) {
        throw new TypeError(
          `lmdb store: put() got a shape for a value of type ${typeof value}; shapes describe typed arrays only. Drop the shape, or store a typed array`,
        );
      }
      payload = encodeShared(value, STORE);
      checkValueSize(payload.byteLength, 0);
      shape = [];
    } else {
      const array = value as TypedArray;
      shape = [array.length];
      if (options?.shape !== undefined) {
        checkShape(options.shape, array.length, 'put()', STORE);
        shape = [...options.shape];
      }
      checkValueSize(array.byteLength, shape.length);
      payload = bytesOf(array);
    }
    const key = this.newKey();
    const recordBytes = headerBytes(shape.length) + payload.byteLength;
    const charged = recordBytes + INDEX_OVERHEAD_BYTES;
    if (this.stages(charged)) {
      // Staged: the key's bytes and the record are built in the client's own memory, written with
      // the next commit.
      const keyBytes = this.arena.utf8(key);
      const { record, header } = valueRecord(code, shape, payload, this.arena.take(recordBytes));
      this.stagedPuts.set(key, { keyBytes, record, header, ttlMs, charged });
      this.staging(charged);
      return key;
    }
    const keyBytes = utf8Bytes(key);
    const { record, header } = valueRecord(code, shape, payload);
    const full = this.write('put()', () => this.insert(keyBytes, record, header, ttlMs, 0));
    if (full !== undefined) throw new StoreFullError(describeFull(full));
    return key;
  }

  async allocate<K extends TypedArrayKind>(
    kind: K,
    shapeOrLength: number | readonly number[],
    options?: AllocateOptions,
  ): Promise<Allocation<TypedArrayKinds[K]>> {
    this.assertOpen();
    const code = dtypeCodeOfKind(kind);
    if (code === 0) {
      throw new TypeError(
        `lmdb store: allocate() got an unknown kind "${String(kind)}"; use one of ${typedArrayKinds.join(', ')}`,
      );
    }
    const ttlMs = checkTtl(options?.ttlMs, 'allocate()');
    let length: number;
    let shape: number[];
    if (typeof shapeOrLength === 'number') {
      checkDimension(shapeOrLength, 'length', 'allocate()', STORE);
      length = shapeOrLength;
      shape = [length];
    } else if (Array.isArray(shapeOrLength)) {
      length = checkShape(shapeOrLength, undefined, 'allocate()', STORE);
      shape = [...shapeOrLength];
    } else {
      throw new TypeError(
        `lmdb store: allocate() takes a length or a shape (array of lengths), got ${typeof shapeOrLength}`,
      );
    }
    const byteLength = length * elementBytes(code);
    checkValueSize(byteLength, shape.length);
    const array = ofDtype(code, this.localArrays.take(code, length)) as TypedArrayKinds[K];
    const key = this.newKey();
    const charged = headerBytes(shape.length) + byteLength + INDEX_OVERHEAD_BYTES;
    if (this.stages(charged)) {
      // Staged like a put: inserted, written, by the first flush (or the next write).
      this.pending.set(key, { array, code, shape, staged: { ttlMs, charged } });
      this.staging(charged);
      return { key, array, dtype: kind, shape: [...shape] };
    }
    const record = new Uint8Array(headerBytes(shape.length));
    writeHeader(record, code, shape, byteLength, FLAG_UNWRITTEN);
    const header: ValueHeader = { code, shape, byteLength, flags: FLAG_UNWRITTEN, headerBytes: record.byteLength };
    const keyBytes = utf8Bytes(key);
    const full = this.write('allocate()', () => {
      const report = this.insert(keyBytes, record, header, ttlMs, RECORD_UNWRITTEN);
      if (report === undefined) this.handles.holds.putSync(holdKey(keyBytes, this.clientId), this.holdUntil());
      return report;
    });
    if (full !== undefined) throw new StoreFullError(describeFull(full));
    this.pending.set(key, { array, code, shape });
    this.held.add(key);
    return { key, array, dtype: kind, shape: [...shape] };
  }

  async flush(options?: FlushOptions): Promise<void> {
    this.writeAllocations();
    if (this.stagedPuts.size > 0 || (this.staged.size > 0 && options?.deletes !== false)) {
      this.write('flush()', () => undefined);
    }
    const full = this.unwrittenFull;
    if (full !== undefined && this.stagedCount > 0) {
      throw new StoreFullError(
        `${describeFull(full)} (${this.stagedCount} value(s) put or allocated by this client wait to be written; the messages that carry their keys wait with them)`,
      );
    }
  }

  /** Whether a put or allocation that takes `charged` bytes is staged (`batchPuts`) rather than written at once. */
  private stages(charged: number): boolean {
    return (
      this.batchPuts &&
      this.eviction === 'none' &&
      this.room !== undefined &&
      charged <= this.room &&
      this.stagedPutBytes + charged < BATCH_MAX_BYTES
    );
  }

  /**
   * Counts a staged put or allocation. Puts are written at once when the batch is full, and on the
   * timer; allocations only by a flush (the actor may still be filling the array), so the bytes
   * staged, not a timer, bound them.
   */
  private staging(charged: number): void {
    this.stagedPutBytes += charged;
    this.stagedCount += 1;
    this.room! -= charged;
    if (this.stagedPuts.size >= BATCH_MAX_PUTS) this.write('put()', () => undefined);
    else if (this.stagedPuts.size > 0) this.stagedTimer ??= setTimeout(() => this.commitStaged(), BATCH_WAIT_MS);
  }

  hasUnflushed(): boolean {
    return this.stagedPuts.size > 0 || this.pending.size > 0 || this.followed.size > 0 || this.staged.size > 0;
  }

  /** flush() of the arrays from allocate(). */
  private writeAllocations(): void {
    if (this.pending.size === 0 && this.followed.size === 0) return;
    this.assertOpen();
    const { values, objects, holds } = this.handles;
    const changes: {
      key: StoreKey;
      array: TypedArray;
      code: number;
      shape: readonly number[];
      first: boolean;
      staged?: Pending['staged'];
    }[] = [];
    for (const [key, { array, code, shape, staged }] of this.pending) {
      changes.push({ key, array, code, shape, first: true, staged });
    }
    if (this.followed.size > 0) {
      // Arrays flushed before and still alive: written again when they differ from the store; the
      // ones whose values are gone (deleted by their reader) are no longer followed.
      const gone: StoreKey[] = [];
      this.snapshot(() => {
        for (const { key, array, entry } of this.followed.alive()) {
          const view = peek(values, this.arena.utf8(key));
          if (view === undefined) gone.push(key);
          else if (!sameBytes(view.subarray(headerBytes(entry.shape.length)), bytesOf(array))) {
            changes.push({ key, array, code: entry.code, shape: entry.shape, first: false });
          }
        }
      });
      for (const key of gone) this.followed.forget(key);
    }
    if (changes.length === 0) return;
    const unwritten = new Set<StoreKey>();
    let fullReport: FullReport | undefined;
    this.write('flush()', () => {
      unwritten.clear();
      fullReport = undefined;
      for (const { key, array, code, shape, first, staged } of changes) {
        const keyBytes = this.arena.utf8(key);
        if (staged !== undefined) {
          // Not in the store yet: inserted whole, written; when it does not fit, it stays pending.
          const { record, header } = valueRecord(code, shape, bytesOf(array));
          const full = unwritten.size > 0 ? undefined : this.insert(keyBytes, record, header, staged.ttlMs, 0);
          if (full !== undefined || unwritten.size > 0) {
            fullReport ??= full;
            unwritten.add(key);
          }
          continue;
        }
        const raw = copyOf(objects, keyBytes);
        if (raw === undefined) continue; // deleted (or expired after its hold lapsed) before the flush
        values.putSync(keyBytes, valueRecord(code, shape, bytesOf(array)).record);
        if (!first) continue;
        const view = new DataView(raw.buffer);
        view.setFloat64(32, view.getFloat64(32, true) & ~RECORD_UNWRITTEN, true);
        // The header copy in the object record loses its "unwritten" flag too.
        raw[OBJECT_RECORD_BYTES + 7] = 0;
        objects.putSync(keyBytes, raw);
        holds.removeSync(holdKey(keyBytes, this.clientId));
      }
    });
    if (fullReport !== undefined) this.unwrittenFull = fullReport;
    // Only the newest MAX_FOLLOWED written can still be followed after this: the older ones are not
    // followed at all (a `WeakRef` each would cost more than the rest of their flush).
    const followFrom = changes.length - unwritten.size - MAX_FOLLOWED;
    let written = 0;
    for (const { key, array, code, shape, first } of changes) {
      if (unwritten.has(key)) continue;
      if (first) {
        this.pending.delete(key);
        this.held.delete(key);
      }
      if (written++ >= followFrom) {
        this.followed.follow(key, { ref: new WeakRef(array), code, shape, byteLength: array.byteLength });
      } else {
        this.followed.forget(key);
      }
    }
    this.recountStaged();
  }

  /** What is staged, after a commit wrote some of it. */
  private recountStaged(): void {
    let bytes = 0;
    let count = this.stagedPuts.size;
    for (const put of this.stagedPuts.values()) bytes += put.charged;
    for (const { staged } of this.pending.values()) {
      if (staged === undefined) continue;
      bytes += staged.charged;
      count += 1;
    }
    this.stagedPutBytes = bytes;
    this.stagedCount = count;
  }

  async get<T = unknown>(key: StoreKey): Promise<T> {
    return this.read(key, false) as T;
  }

  async getArray<T extends TypedArray = TypedArray>(key: StoreKey): Promise<ShapedArray<T>> {
    return this.read(key, true) as ShapedArray<T>;
  }

  async info(key: StoreKey): Promise<StoredInfo> {
    this.assertOpen();
    checkKeyType(key);
    this.writeStagedPut(key);
    // A staged allocation is in the store once written.
    if (this.pending.get(key)?.staged !== undefined) this.writeAllocations();
    if (this.staged.has(key)) throw objectNotFound(DRIVER, key, 'unknown');
    const found = this.snapshot(() => this.lookup(key, Date.now()));
    if ('missing' in found) throw objectNotFound(DRIVER, key, found.missing);
    return infoOf(key, found.record.header);
  }

  async has(key: StoreKey): Promise<boolean> {
    this.assertOpen();
    checkKeyType(key);
    if (!this.isKey(key) || this.staged.has(key)) return false;
    if (this.stagedPuts.has(key) || this.pending.get(key)?.staged !== undefined) return true;
    const found = this.snapshot(() => this.lookup(key, Date.now()));
    return !('missing' in found);
  }

  async delete(key: StoreKey): Promise<boolean> {
    this.assertOpen();
    checkKeyType(key);
    if (!this.isKey(key) || this.staged.has(key)) return false;
    const charged = this.stagedPuts.get(key)?.charged ?? this.pending.get(key)?.staged?.charged;
    if (charged !== undefined) {
      // Never written: nothing to free.
      this.stagedPuts.delete(key);
      this.pending.delete(key);
      this.stagedPutBytes -= charged;
      this.stagedCount -= 1;
      if (this.room !== undefined) this.room += charged;
      return true;
    }
    this.pending.delete(key);
    this.followed.forget(key);
    this.held.delete(key);
    const keyBytes = utf8Bytes(key);
    if (this.batchDeletes) return this.stageDelete(key, keyBytes);
    return this.write('delete()', () => {
      const raw = copyOf(this.handles.objects, keyBytes);
      if (raw === undefined) return false;
      this.free(keyBytes, decodeObjectRecord(raw, raw.byteLength, key), 0);
      return true;
    });
  }

  isKey(value: string): boolean {
    return typeof value === 'string' && this.keyPattern.test(value);
  }

  async release(key?: StoreKey): Promise<void> {
    this.assertOpen();
    if (key !== undefined) {
      checkKeyType(key);
      if (!this.held.has(key)) return;
      this.write('release()', () => {
        this.handles.holds.removeSync(holdKey(utf8Bytes(key), this.clientId));
      });
      this.held.delete(key);
      return;
    }
    if (this.held.size === 0) return;
    const keys = [...this.held];
    this.write('release()', () => {
      for (const held of keys) this.handles.holds.removeSync(holdKey(utf8Bytes(held), this.clientId));
    });
    for (const held of keys) this.held.delete(held);
  }

  async track(keys: readonly StoreKey[], delta: number): Promise<void> {
    this.assertOpen();
    if (!Number.isSafeInteger(delta)) {
      throw new RangeError(`lmdb store: track() needs an integer delta, got ${String(delta)}`);
    }
    const ours = keys.filter((key) => this.isKey(key));
    if (ours.length === 0 || delta === 0) return;
    this.write('track()', () => {
      const { objects } = this.handles;
      for (const key of ours) {
        const keyBytes = utf8Bytes(key);
        const raw = copyOf(objects, keyBytes);
        if (raw === undefined) continue;
        const view = new DataView(raw.buffer);
        view.setFloat64(24, Math.max(0, view.getFloat64(24, true) + delta), true);
        objects.putSync(keyBytes, raw);
      }
    });
  }

  async usage(): Promise<StoreUsage> {
    this.assertOpen();
    // What this client deleted counts as gone, what it put as there.
    if (this.stagedCount > this.stagedPuts.size) this.writeAllocations();
    if (this.staged.size > 0 || this.stagedPuts.size > 0) this.write('usage()', () => undefined);
    return this.snapshot(() => ({
      usedBytes: readNumber(this.handles.meta, META.usedBytes),
      capacityBytes: readNumber(this.handles.meta, META.capacityBytes),
      objects: readNumber(this.handles.meta, META.objects),
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
      await this.release();
    } catch {
      // The store may be gone already; what is left lapses with the lease.
    }
    clearTimeout(this.stagedTimer);
    this.closed = true;
    await this.handles.root.close().catch(() => {});
  }

  // ---- for the run that opened the store ------------------------------------------------------

  /** Frees every expired value that nobody holds. Cheap when nothing has expired. */
  reapExpired(): number {
    if (this.closed) return 0;
    const now = Date.now();
    const due = this.snapshot(() => {
      for (const { key } of this.handles.expiry.getRange({ limit: 1 })) return readSortKey(key) <= now;
      return false;
    });
    if (!due) return 0;
    return this.write('reaper', () => this.reap(Date.now(), Number.POSITIVE_INFINITY).freed);
  }

  /** Closes the client of the run: ends the session (other clients are refused from now on). */
  async closeAsOwner(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
      await this.release();
      this.write('close()', () => {
        this.handles.meta.removeSync(utf8Bytes(META.session));
      });
    } catch {
      // Removed under us already: nothing to end.
    }
    this.closed = true;
    await this.handles.root.close().catch(() => {});
  }

  // ---- internals -------------------------------------------------------------------------------

  private newKey(): StoreKey {
    this.sequence += 1;
    return `${this.keyPrefix}${this.clientId.toString(36)}.${this.sequence.toString(36)}`;
  }

  private holdUntil(): Bytes {
    return float64Bytes(Date.now() + this.leaseMs);
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new StoreUnavailableError(
        `lmdb store: this client of the store at ${this.path} was closed; connect a new one with connectStore(descriptor)`,
      );
    }
  }

  /** The store's files are still the ones this client opened. */
  private assertFiles(): void {
    let stat: { ino: number; dev: number };
    try {
      stat = statSync(this.handles.dataFile);
    } catch {
      throw new StoreUnavailableError(
        `lmdb store: the store at ${this.path} is gone (its files were removed: its run ended, or someone deleted them)`,
      );
    }
    if (stat.ino !== this.handles.inode || stat.dev !== this.handles.device) {
      throw new StoreUnavailableError(
        `lmdb store: the store at ${this.path} was removed and another one created in its place; this client belongs to the old one`,
      );
    }
  }

  private assertSession(): void {
    const view = peek(this.handles.meta, metaKey(META.session));
    // Later checks compare the record's bytes with the ones that matched before they parse anything.
    if (view !== undefined && this.sessionRecord !== undefined && sameBytes(view, this.sessionRecord)) return;
    const session = view === undefined ? undefined : (JSON.parse(utf8Text(view)) as SessionRecord);
    if (view !== undefined && session?.id === this.session) {
      this.sessionRecord = view.slice();
      return;
    }
    throw new StoreUnavailableError(
      `lmdb store: the store at ${this.path} was closed (the run that opened it ended); this client can no longer use it`,
    );
  }

  /**
   * Runs `body` in a write transaction (all or nothing: a throw aborts it), after the staged deletes,
   * which it commits with it.
   */
  private write<T>(what: string, body: () => T): T {
    this.assertOpen();
    this.assertFiles();
    const staged = this.staged;
    const puts = this.stagedPuts;
    let written = 0;
    let full: FullReport | undefined;
    let result: T;
    try {
      result = this.handles.root.transactionSync(() => {
        const counters = new MetaCounters(this.handles.meta);
        this.txnCounters = counters;
        this.assertSession();
        if (staged.size > 0) this.freeStaged(staged);
        written = 0;
        full = undefined;
        for (const { keyBytes, record, header, ttlMs } of puts.values()) {
          // In put order; when one does not fit, it and the ones after it stay staged.
          full = this.insert(keyBytes, record, header, ttlMs, 0);
          if (full !== undefined) break;
          written += 1;
        }
        const value = body();
        counters.writeBack();
        if (this.batchPuts) this.room = counters.get(META.capacityBytes) - counters.get(META.usedBytes);
        return value;
      });
    } catch (error) {
      throw this.translate(error, what);
    } finally {
      this.txnCounters = undefined;
    }
    if (staged.size > 0) {
      this.staged = new Map();
      this.stagedBytes = 0;
    }
    if (written > 0) {
      if (written === puts.size) this.stagedPuts = new Map();
      else for (const key of [...puts.keys()].slice(0, written)) puts.delete(key);
      this.recountStaged();
    }
    // No staged put needs its bytes any more: what else was taken (keys to look up or write) was used at once.
    if (this.stagedPuts.size === 0) this.arena.reset();
    this.unwrittenFull = full;
    if (this.staged.size === 0 && this.stagedPuts.size === 0) {
      clearTimeout(this.stagedTimer);
      this.stagedTimer = undefined;
    }
    return result;
  }

  /** The meta counters of the write transaction under way. */
  private get counters(): MetaCounters {
    const counters = this.txnCounters;
    if (counters === undefined) throw new Error('lmdb store: meta counters outside a write transaction');
    return counters;
  }

  /** Writes the staged puts, when `key` is one of them: reads see what this client put. */
  private writeStagedPut(key: StoreKey): void {
    if (this.stagedPuts.has(key)) this.write('flush()', () => undefined);
  }

  /**
   * delete() of a client that batches deletes: stages `key` if it holds a value now (or held it when
   * this client last read it: a sink deletes what it just read, without another look).
   */
  private stageDelete(key: StoreKey, keyBytes: Bytes): boolean {
    let charged: number;
    if (this.lastRead?.key === key) {
      charged = this.lastRead.charged;
    } else {
      const raw = this.snapshot(() => copyOf(this.handles.objects, keyBytes));
      if (raw === undefined) return false;
      charged = decodeObjectRecord(raw, raw.byteLength, key).charged;
    }
    this.lastRead = undefined;
    this.staged.set(key, keyBytes);
    this.stagedBytes += charged;
    if (this.staged.size >= BATCH_MAX_DELETES || this.stagedBytes >= BATCH_MAX_BYTES) {
      this.write('delete()', () => undefined);
    } else {
      this.stagedTimer ??= setTimeout(() => this.commitStaged(), BATCH_WAIT_MS);
    }
    return true;
  }

  /** The timer's commit of the staged deletes and puts; when it fails (the store is gone or full), they wait for the next write. */
  private commitStaged(): void {
    this.stagedTimer = undefined;
    if ((this.staged.size === 0 && this.stagedPuts.size === 0) || this.closed) return;
    try {
      this.write('delete()', () => undefined);
    } catch {
      // close() or the next write tries again; a store that is gone took the values with it.
    }
  }

  /** Frees every staged value still there (inside a write transaction; another client may have freed one). */
  private freeStaged(staged: ReadonlyMap<StoreKey, Bytes>): void {
    const freed = { values: 0, charged: 0 };
    for (const [key, keyBytes] of staged) {
      const raw = copyOf(this.handles.objects, keyBytes);
      if (raw !== undefined) this.free(keyBytes, decodeObjectRecord(raw, raw.byteLength, key), 0, freed);
    }
    if (freed.values > 0) this.countFreed(freed);
  }

  /** Runs `body` on the latest committed state, read-only. */
  private snapshot<T>(body: () => T): T {
    this.assertOpen();
    // A read need not stat the files each time: one that comes within a few ms of the files' removal
    // reads the values they held, as one just before it did.
    const now = performance.now();
    if (now - this.filesCheckedAt >= READ_FILES_CHECK_MS) {
      this.assertFiles();
      this.filesCheckedAt = now;
    }
    try {
      this.handles.root.resetReadTxn();
      this.assertSession();
      return body();
    } catch (error) {
      throw this.translate(error, 'read');
    }
  }

  private translate(error: unknown, what: string): unknown {
    if (ImprovError.isInstance(error) || error instanceof TypeError || error instanceof RangeError) return error;
    const message = error instanceof Error ? error.message : String(error);
    if (/closed/i.test(message)) {
      return new StoreUnavailableError(`lmdb store: ${what} failed: the store at ${this.path} is closed (${message})`, {
        cause: error,
      });
    }
    if (/ENOSPC|No space left/i.test(message)) {
      return new StoreFullError(
        `lmdb store: ${what} failed: the disk of ${this.path} is full (${message}). Free disk space or lower settings.store_size`,
        { cause: error },
      );
    }
    return new StoreUnavailableError(`lmdb store: ${what} failed on the store at ${this.path}: ${message}`, {
      cause: error,
    });
  }

  /** Looks a key up (inside a transaction or snapshot). */
  private lookup(key: StoreKey, now: number): Lookup {
    if (!this.isKey(key)) return { missing: 'foreign' };
    const keyBytes = utf8Bytes(key);
    const raw = peek(this.handles.objects, keyBytes);
    if (raw === undefined) return { missing: this.goneReason(keyBytes) };
    const record = decodeObjectRecord(raw, raw.byteLength, `key "${key}"`);
    if (record.expiresAt > 0 && record.expiresAt <= now && !this.heldByMe(keyBytes, now)) {
      return { missing: 'expired' };
    }
    return { record };
  }

  private goneReason(keyBytes: Bytes): MissingReason {
    const tombstone = peek(this.handles.gone, keyBytes);
    if (tombstone === undefined) return 'unknown';
    return tombstone[0] === GONE_EVICTED ? 'evicted' : tombstone[0] === GONE_EXPIRED ? 'expired' : 'unknown';
  }

  private heldByMe(keyBytes: Bytes, now: number): boolean {
    const hold = peek(this.handles.holds, holdKey(keyBytes, this.clientId));
    return hold !== undefined && hold.byteLength === 8 && readFloat64(hold) > now;
  }

  /** Whether any client holds the key (a hold not past its lease). */
  private heldByAnyone(keyBytes: Bytes, now: number): boolean {
    for (const { value } of this.handles.holds.getRange(holdRange(keyBytes))) {
      if (value.byteLength === 8 && readFloat64(value) > now) return true;
    }
    return false;
  }

  private read(key: StoreKey, asArray: boolean): unknown {
    this.assertOpen();
    checkKeyType(key);
    this.writeStagedPut(key);
    const pending = this.pending.get(key);
    if (pending !== undefined) return this.readPending(pending, asArray);
    if (!this.isKey(key)) throw objectNotFound(DRIVER, key, 'foreign');
    if (this.staged.has(key)) throw objectNotFound(DRIVER, key, 'unknown');
    const keyBytes = utf8Bytes(key);
    // A hold and the "read" mark only matter to what can free a value behind its reader's back:
    // eviction, and the TTL of a value that has one. Without both, a read is read-only.
    const unheld = this.eviction === 'none' ? this.snapshot(() => this.readUnheld(key, keyBytes)) : undefined;
    const result =
      unheld ?? this.write(asArray ? 'getArray()' : 'get()', () => this.readHolding(key, keyBytes, asArray));
    if ('missing' in result) throw objectNotFound(DRIVER, key, result.missing);
    if (asArray && result.header.code === 0) {
      throw new TypeError(
        `lmdb store: key "${key}" holds a msgpack value, not a typed array; read it with get(), or check info(key).kind first`,
      );
    }
    if (unheld === undefined) this.held.add(key);
    if (!asArray) return result.value;
    return { array: result.value, dtype: kindOfCode(result.header.code), shape: result.header.shape };
  }

  /** A read that needs no hold (inside a snapshot), or undefined when the value has a TTL. */
  private readUnheld(key: StoreKey, keyBytes: Bytes): ReadResult | undefined {
    const raw = peek(this.handles.objects, keyBytes);
    if (raw === undefined) return { missing: this.goneReason(keyBytes) };
    const record = decodeObjectRecord(raw, raw.byteLength, `key "${key}"`);
    if (record.expiresAt > 0) return undefined;
    const result = this.readValue(key, keyBytes);
    this.lastRead = { key, charged: record.charged };
    return result;
  }

  /** get()'s read, marking the value read and holding it (inside a write transaction). */
  private readHolding(key: StoreKey, keyBytes: Bytes, asArray: boolean): ReadResult {
    const now = Date.now();
    const { objects, holds } = this.handles;
    const raw = copyOf(objects, keyBytes);
    if (raw === undefined) return { missing: this.goneReason(keyBytes) };
    const record = decodeObjectRecord(raw, raw.byteLength, `key "${key}"`);
    if (record.expiresAt > 0 && record.expiresAt <= now && !this.heldByMe(keyBytes, now)) {
      // Past its TTL: freed now unless some reader still holds it; unreadable either way.
      if (!this.heldByAnyone(keyBytes, now)) this.free(keyBytes, record, GONE_EXPIRED);
      return { missing: 'expired' };
    }
    if (asArray && record.header.code === 0) return { value: undefined, header: record.header };
    const result = this.readValue(key, keyBytes);
    if ((record.flags & RECORD_READ) === 0) {
      new DataView(raw.buffer).setFloat64(32, record.flags | RECORD_READ, true);
      objects.putSync(keyBytes, raw);
    }
    holds.putSync(holdKey(keyBytes, this.clientId), this.holdUntil());
    return result;
  }

  /** The value under a key whose object record exists (inside a transaction or snapshot). */
  private readValue(key: StoreKey, keyBytes: Bytes): ReadResult {
    const view = peek(this.handles.values, keyBytes);
    if (view === undefined) throw new Error(`lmdb store: key "${key}" has an object record but no value`);
    const header = readHeader(view, view.byteLength, `lmdb store: key "${key}"`);
    return { value: decodePayload(view, header, key), header };
  }

  /** This client's own allocation before its flush: a copy of the local array. */
  private readPending(pending: Pending, asArray: boolean): unknown {
    const array = pending.array.slice();
    if (!asArray) return array;
    return { array, dtype: kindOfCode(pending.code), shape: [...pending.shape] };
  }

  /**
   * Stores a new value (inside a write transaction): frees expired values and, with eviction,
   * old read ones when it would not fit. Returns a report instead when it does not fit.
   */
  private insert(
    keyBytes: Bytes,
    record: Bytes,
    header: ValueHeader,
    ttlMs: number | undefined,
    flags: number,
  ): FullReport | undefined {
    const { values, objects, order, expiry } = this.handles;
    const counters = this.counters;
    const now = Date.now();
    const charged = header.headerBytes + header.byteLength + INDEX_OVERHEAD_BYTES;
    const capacity = counters.get(META.capacityBytes);
    let used = counters.get(META.usedBytes);
    if (used + charged > capacity) used = this.reap(now, Number.POSITIVE_INFINITY).used;
    if (this.eviction === 'oldest' && used + charged > capacity * EVICTION_HIGH_WATER) {
      const report = this.evict(now, charged, capacity, header.byteLength);
      if (report !== undefined) return report;
      used = counters.get(META.usedBytes);
    }
    if (used + charged > capacity) {
      return {
        asked: charged,
        valueBytes: header.byteLength,
        used,
        capacity,
        eviction: this.eviction,
        held: 0,
        unread: 0,
        inFlight: 0,
        unwritten: 0,
      };
    }
    const sequence = counters.get(META.nextSequence) + 1;
    counters.set(META.nextSequence, sequence);
    const expiresAt = ttlMs === undefined ? 0 : Math.ceil(now + ttlMs);
    const headerCopy = record.subarray(0, header.headerBytes);
    values.putSync(keyBytes, record);
    objects.putSync(
      keyBytes,
      encodeObjectRecord(
        { sequence, charged, expiresAt, inFlight: 0, flags, created: now },
        headerCopy,
        objectRecordScratch,
      ),
    );
    order.putSync(sortKey(sequence, undefined, sortKeyScratch), keyBytes);
    if (expiresAt > 0) expiry.putSync(sortKey(expiresAt, sequence), keyBytes);
    counters.set(META.usedBytes, used + charged);
    counters.set(META.objects, counters.get(META.objects) + 1);
    return undefined;
  }

  /**
   * Frees the oldest values that were read, are not held, have no message waiting in a link and
   * are written, until the new value fits below the low-water mark. Frees nothing, and returns a
   * report, when even all of them would not make it fit.
   */
  private evict(now: number, charged: number, capacity: number, valueBytes: number): FullReport | undefined {
    const { order, objects } = this.handles;
    const used = this.counters.get(META.usedBytes);
    const target = capacity * EVICTION_LOW_WATER;
    const counts = { held: 0, unread: 0, inFlight: 0, unwritten: 0 };
    const victims: { keyBytes: Bytes; record: ObjectRecord }[] = [];
    let freeable = 0;
    for (const { value } of order.getRange({})) {
      if (used - freeable + charged <= target) break;
      const keyBytes = copyBytes(value);
      const raw = peek(objects, keyBytes);
      if (raw === undefined) continue;
      const record = decodeObjectRecord(raw, raw.byteLength, 'eviction');
      if ((record.flags & RECORD_UNWRITTEN) !== 0) counts.unwritten++;
      else if ((record.flags & RECORD_READ) === 0) counts.unread++;
      else if (record.inFlight > 0) counts.inFlight++;
      else if (this.heldByAnyone(keyBytes, now)) counts.held++;
      else {
        victims.push({ keyBytes, record });
        freeable += record.charged;
      }
    }
    if (used - freeable + charged > capacity) {
      return { asked: charged, valueBytes, used, capacity, eviction: 'oldest', ...counts };
    }
    for (const { keyBytes, record } of victims) this.free(keyBytes, record, GONE_EVICTED);
    return undefined;
  }

  /** Frees expired values nobody holds (inside a write transaction). */
  private reap(now: number, limit: number): { freed: number; used: number } {
    const { expiry, objects } = this.handles;
    const due: { keyBytes: Bytes; record: ObjectRecord }[] = [];
    for (const { key, value } of expiry.getRange({ end: sortKey(now + 1) })) {
      if (due.length >= limit) break;
      if (readSortKey(key) > now) break;
      const keyBytes = copyBytes(value);
      const raw = peek(objects, keyBytes);
      if (raw === undefined) continue;
      if (this.heldByAnyone(keyBytes, now)) continue;
      due.push({ keyBytes, record: decodeObjectRecord(raw, raw.byteLength, 'reaper') });
    }
    for (const { keyBytes, record } of due) this.free(keyBytes, record, GONE_EXPIRED);
    return { freed: due.length, used: this.counters.get(META.usedBytes) };
  }

  /**
   * Removes a value and everything about it (inside a write transaction); `reason` 0: no tombstone.
   * With `freed`, the meta counters are left to the caller, which frees many.
   */
  private free(
    keyBytes: Bytes,
    record: ObjectRecord,
    reason: number,
    freed?: { values: number; charged: number },
  ): void {
    const { values, objects, order, expiry, holds } = this.handles;
    values.removeSync(keyBytes);
    objects.removeSync(keyBytes);
    order.removeSync(sortKey(record.sequence));
    if (record.expiresAt > 0) expiry.removeSync(sortKey(record.expiresAt, record.sequence));
    // Holds exist only where eviction or a TTL could free the value, or while it is unwritten.
    if (this.eviction !== 'none' || record.expiresAt > 0 || (record.flags & RECORD_UNWRITTEN) !== 0) {
      const stale: Bytes[] = [];
      for (const { key } of holds.getRange(holdRange(keyBytes))) stale.push(copyBytes(key));
      for (const key of stale) holds.removeSync(key);
    }
    if (freed === undefined) this.countFreed({ values: 1, charged: record.charged });
    else {
      freed.values += 1;
      freed.charged += record.charged;
    }
    if (reason !== 0) this.tombstone(keyBytes, reason);
  }

  private countFreed(freed: { values: number; charged: number }): void {
    const counters = this.counters;
    counters.set(META.usedBytes, Math.max(0, counters.get(META.usedBytes) - freed.charged));
    counters.set(META.objects, Math.max(0, counters.get(META.objects) - freed.values));
  }

  private tombstone(keyBytes: Bytes, reason: number): void {
    const { gone, goneOrder } = this.handles;
    const counters = this.counters;
    const sequence = counters.get(META.nextTombstone) + 1;
    counters.set(META.nextTombstone, sequence);
    const entry = new Uint8Array(9);
    entry[0] = reason;
    new DataView(entry.buffer).setFloat64(1, sequence, true);
    gone.putSync(keyBytes, entry);
    goneOrder.putSync(sortKey(sequence), keyBytes);
    let count = counters.get(META.tombstones) + 1;
    if (count > MAX_TOMBSTONES) {
      const oldest: { order: Bytes; key: Bytes }[] = [];
      for (const { key, value } of goneOrder.getRange({ limit: count - MAX_TOMBSTONES })) {
        oldest.push({ order: copyBytes(key), key: copyBytes(value) });
      }
      for (const { order, key } of oldest) {
        goneOrder.removeSync(order);
        gone.removeSync(key);
        count--;
      }
    }
    counters.set(META.tombstones, count);
  }
}

// ---- values -----------------------------------------------------------------------------------

/** The value of a record, in memory of its own (never a view of lmdb-js's buffers or the map). */
function decodePayload(view: Bytes, header: ValueHeader, key: StoreKey): unknown {
  const { code, byteLength, headerBytes: start, flags } = header;
  const unwritten = (flags & FLAG_UNWRITTEN) !== 0;
  if (!unwritten && start + byteLength > view.byteLength) {
    throw new Error(`lmdb store: the value of key "${key}" is shorter than its header says`);
  }
  if (code === 0) {
    const bytes = view.slice(start, start + byteLength);
    return decodeValue(bytes);
  }
  const ctor = typedArrayConstructors[code - 1]!;
  const length = byteLength / ctor.BYTES_PER_ELEMENT;
  if (unwritten) return ofDtype(code, new ctor(length));
  // An ArrayBuffer of its own (not a pooled slice), filled whole by the copy.
  const bytes = uninitialized(byteLength);
  bytes.set(view.subarray(start, start + byteLength));
  return ofDtype(code, new ctor(bytes.buffer, 0, length));
}

/** The bytes of a typed array (a view, no copy). */
function bytesOf(array: TypedArray): Bytes {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

function sameBytes(a: Bytes, b: Bytes): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return (
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ) === 0
  );
}

function infoOf(key: StoreKey, header: ValueHeader): StoredInfo {
  if (header.code === 0) return { key, kind: 'value', byteLength: header.byteLength };
  return {
    key,
    kind: 'array',
    dtype: kindOfCode(header.code),
    shape: [...header.shape],
    byteLength: header.byteLength,
  };
}

function checkKeyType(key: unknown): void {
  if (typeof key !== 'string') {
    throw new TypeError(
      `lmdb store: a key must be a string, got ${key === null ? 'null' : typeof key}: pass the key that put() or allocate() returned`,
    );
  }
}

function checkTtl(ttlMs: unknown, method: string): number | undefined {
  if (ttlMs === undefined) return undefined;
  if (typeof ttlMs !== 'number' || !(ttlMs > 0) || !Number.isFinite(ttlMs)) {
    throw new RangeError(
      `lmdb store: ${method}: ttlMs must be a positive number of milliseconds, got ${String(ttlMs)}`,
    );
  }
  return ttlMs;
}

function checkValueSize(byteLength: number, ndim: number): void {
  if (byteLength + headerBytes(ndim) > MAX_VALUE_BYTES) {
    throw new RangeError(
      `lmdb store: a value of ${formatBytes(byteLength)} is over LMDB's limit of 4 GiB per value; split it into several values`,
    );
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
}

/** Sizes in messages; exported for code that took it from here before core had it. */
export { formatBytes };

function describeFull(report: FullReport): string {
  const free = Math.max(0, report.capacity - report.used);
  const head = `lmdb store is full: a value of ${formatBytes(report.valueBytes)} needs ${formatBytes(report.asked)} (${report.asked} bytes with its header and index), and ${formatBytes(free)} (${free} bytes) of ${formatBytes(report.capacity)} is free`;
  if (report.eviction === 'oldest') {
    const kept = [
      report.held > 0 ? `${report.held} held by a reader` : '',
      report.unread > 0 ? `${report.unread} not read yet` : '',
      report.inFlight > 0 ? `${report.inFlight} waiting in a link` : '',
      report.unwritten > 0 ? `${report.unwritten} allocated and not flushed` : '',
    ].filter((part) => part !== '');
    return `${head}; eviction (settings.store_eviction: oldest) could not free enough: of the values it may not evict, ${kept.length > 0 ? kept.join(', ') : 'none'}. Raise settings.store_size, or read and release values sooner`;
  }
  return `${head}. Raise settings.store_size, delete values once every reader is done with them, give values a ttlMs, or turn on settings.store_eviction: oldest`;
}

// ---- reading a store after (or during) its run ------------------------------------------------

/** One value of a store, as `improv store ls` shows it. */
export interface LmdbStoreEntry {
  key: StoreKey;
  kind: 'array' | 'value';
  /** For arrays. */
  dtype?: TypedArrayKind;
  /** For arrays. */
  shape?: number[];
  /** Payload bytes. */
  byteLength: number;
  /** An allocation that was never flushed: it reads as zeros. */
  unwritten: boolean;
  /** Time of the put, ms since the epoch. */
  created: number;
  /** Expiry time (ms since the epoch), when it has a TTL. */
  expiresAt?: number;
  /** Some client has read it. */
  read: boolean;
}

/** A read-only view of an lmdb store (from {@link openLmdbStoreReader}). */
export interface LmdbStoreReader {
  /** Absolute path of the store's folder. */
  readonly path: string;
  readonly keyPrefix: string;
  /** Whether a run has the store open now (and the process id of that run). */
  readonly openBy: number | undefined;
  usage(): StoreUsage;
  /** Every value, oldest first. */
  list(): LmdbStoreEntry[];
  /** What is stored under `key`, or undefined. */
  entry(key: StoreKey): LmdbStoreEntry | undefined;
  /** The value under `key` (a typed array with its dtype and shape, or the decoded msgpack value), or undefined. */
  read(key: StoreKey): { entry: LmdbStoreEntry; value: unknown } | undefined;
  /**
   * The stored bytes of the value under `key` (a copy): an array's raw little-endian elements
   * (zeros for an allocation never flushed), or a value's msgpack encoding. Undefined when absent.
   */
  bytes(key: StoreKey): { entry: LmdbStoreEntry; bytes: Uint8Array } | undefined;
  close(): Promise<void>;
}

/**
 * Opens the store at `path` read-only (it never writes to `data.mdb`): for `improv store` and
 * tools. Throws an Error saying what is wrong when `path` holds no improv lmdb store.
 */
export async function openLmdbStoreReader(path: string): Promise<LmdbStoreReader> {
  const folder = resolve(path);
  if (!existsSync(folder)) throw new Error(`${path} does not exist`);
  if (!statSync(folder).isDirectory()) {
    throw new Error(`${path} is a file, not an lmdb store (a store is a folder holding data.mdb and lock.mdb)`);
  }
  if (!existsSync(join(folder, 'data.mdb'))) {
    throw new Error(
      `${path} is not an lmdb store: it has no data.mdb (a store is a folder holding data.mdb and lock.mdb)`,
    );
  }
  const dataFile = join(folder, 'data.mdb');
  if (statSync(dataFile).size === 0) throw new Error(`${path} is not an improv lmdb store: its data.mdb is empty`);
  const problem = dataFileProblem(dataFile);
  if (problem !== undefined) throw new Error(`${path} is not an improv lmdb store: ${problem}`);
  let handles: Handles;
  try {
    handles = openHandles(folder, { sync: false, readOnly: true });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`${path} is not an improv lmdb store (LMDB cannot open it: ${reason})`, { cause: error });
  }
  const fail = async (message: string): Promise<never> => {
    await handles.root.close().catch(() => {});
    throw new Error(message);
  };
  let store: StoreRecord | undefined;
  let session: SessionRecord | undefined;
  try {
    store = readJson<StoreRecord>(handles.meta, META.store);
    session = readJson<SessionRecord>(handles.meta, META.session);
  } catch (error) {
    return fail(`${path} is not an improv lmdb store (${error instanceof Error ? error.message : String(error)})`);
  }
  if (store?.format !== LAYOUT_FORMAT) return fail(`${path} is an LMDB environment but not an improv store`);
  if (store.version !== LAYOUT_VERSION) {
    return fail(
      `${path} is an improv store of layout version ${store.version}; this improv reads version ${LAYOUT_VERSION}`,
    );
  }
  const entryOf = (key: StoreKey, raw: Bytes): LmdbStoreEntry => {
    const record = decodeObjectRecord(raw, raw.byteLength, `key "${key}"`);
    const { header } = record;
    const entry: LmdbStoreEntry = {
      key,
      kind: header.code === 0 ? 'value' : 'array',
      byteLength: header.byteLength,
      unwritten: (record.flags & RECORD_UNWRITTEN) !== 0,
      created: record.created,
      read: (record.flags & RECORD_READ) !== 0,
    };
    if (header.code !== 0) {
      entry.dtype = kindOfCode(header.code);
      entry.shape = [...header.shape];
    }
    if (record.expiresAt > 0) entry.expiresAt = record.expiresAt;
    return entry;
  };
  const fresh = () => handles.root.resetReadTxn();
  return {
    path: folder,
    keyPrefix: store.keyPrefix,
    openBy: session !== undefined && processAlive(session.pid) ? session.pid : undefined,
    usage() {
      fresh();
      return {
        usedBytes: readNumber(handles.meta, META.usedBytes),
        capacityBytes: readNumber(handles.meta, META.capacityBytes),
        objects: readNumber(handles.meta, META.objects),
      };
    },
    list() {
      fresh();
      const entries: LmdbStoreEntry[] = [];
      for (const { value } of handles.order.getRange({})) {
        const keyBytes = copyBytes(value);
        const raw = copyOf(handles.objects, keyBytes);
        if (raw !== undefined) entries.push(entryOf(utf8Text(keyBytes), raw));
      }
      return entries;
    },
    entry(key) {
      if (typeof key !== 'string' || key === '') return undefined;
      fresh();
      const raw = copyOf(handles.objects, utf8Bytes(key));
      return raw === undefined ? undefined : entryOf(key, raw);
    },
    read(key) {
      if (typeof key !== 'string' || key === '') return undefined;
      fresh();
      const keyBytes = utf8Bytes(key);
      const raw = copyOf(handles.objects, keyBytes);
      if (raw === undefined) return undefined;
      const entry = entryOf(key, raw);
      const view = peek(handles.values, keyBytes);
      if (view === undefined) return undefined;
      const header = readHeader(view, view.byteLength, `key "${key}"`);
      const decoded = decodePayload(view, header, key);
      const value =
        header.code === 0 ? decoded : { array: decoded, dtype: kindOfCode(header.code), shape: [...header.shape] };
      return { entry, value };
    },
    bytes(key) {
      if (typeof key !== 'string' || key === '') return undefined;
      fresh();
      const keyBytes = utf8Bytes(key);
      const raw = copyOf(handles.objects, keyBytes);
      if (raw === undefined) return undefined;
      const entry = entryOf(key, raw);
      const view = peek(handles.values, keyBytes);
      if (view === undefined) return undefined;
      const header = readHeader(view, view.byteLength, `key "${key}"`);
      const start = header.headerBytes;
      const bytes =
        (header.flags & FLAG_UNWRITTEN) !== 0
          ? new Uint8Array(header.byteLength)
          : view.slice(start, start + header.byteLength);
      return { entry, bytes };
    },
    async close() {
      await handles.root.close().catch(() => {});
    },
  };
}
