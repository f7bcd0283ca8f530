/**
 * The `redis` store driver: values in a Redis server, shared by every worker and process of a
 * pipeline run on any machine that reaches the server. Typed arrays are stored raw (a small header
 * with dtype and shape, then the bytes as they are in memory: no pickling, no compression), any
 * other value msgpack-encoded; reads return copies. Every compound operation (put with the
 * capacity check and eviction, get with a hold, delete, release, reaping expired values) is one Lua
 * script, atomic across all clients. The layout and the fault behaviour are in docs/redis.md.
 *
 * Without an address the store starts its own `redis-server` on a free loopback port and stops it
 * on close (with `server.bind`, also on an address other machines reach, behind a random password);
 * with one it connects and never starts or stops anything.
 *
 * @example
 * ```ts
 * import { createRedisStore } from '@improv/store/redis';
 *
 * const store = await createRedisStore().open({ sizeBytes: 256 * 1024 * 1024 }); // its own server
 * const key = await store.client.put(new Float32Array(512 * 512), { shape: [512, 512] });
 * const { array, shape } = await store.client.getArray<Float32Array>(key); // a copy
 * await store.client.delete(key);
 * await store.close(); // stops the server
 *
 * const shared = createRedisStore({ host: '10.0.0.5', port: 6379 }); // a server of your own
 * ```
 * @module
 */
import { Buffer } from 'node:buffer';
import { createConnection } from 'node:net';
import { totalmem } from 'node:os';
import { setInterval as setRepeating } from 'node:timers';
import {
  type AllocateOptions,
  type Allocation,
  type ConnectStore,
  DEFAULT_STORE_LEASE_MS,
  dtypeCodeOf,
  dtypeCodeOfKind,
  EVICTION_HIGH_WATER,
  EVICTION_LOW_WATER,
  formatBytes,
  ObjectNotFoundError,
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
import { checkDimension, checkShape } from './_codec.ts';
import { LocalArrays } from './_local-arrays.ts';
import {
  arrayOf,
  bytesOf,
  decodeValue,
  encodeHeader,
  encodeValue,
  type Header,
  kindOf,
  MAX_VALUE_BYTES,
  readHeader,
} from './_redis-codec.ts';
import {
  type Arg,
  Connection,
  describeAddress,
  describeCause,
  parseRedisUrl,
  type RedisAddress,
} from './_redis-connection.ts';
import { Follower } from './_redis-follow.ts';
import { BulkReader, isNode, ReaderTimeout } from './_redis-reader.ts';
import { allScripts, type Script, scripts } from './_redis-scripts.ts';
import {
  checkBind,
  type RedisServerOptions,
  type RunningServer,
  serverMaxmemory,
  startRedisServer,
} from './_redis-server.ts';

export type { RedisAddress } from './_redis-connection.ts';
export type { RedisServerOptions } from './_redis-server.ts';

/** Options of {@link createRedisStore}. Give an address (`url`, or `host` and `port`) to use a running server. */
export interface RedisStoreOptions {
  /** `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS). */
  url?: string;
  /** Host of a running server. */
  host?: string;
  /** Its port. Default 6379. A port without a host means a server on this machine (127.0.0.1). */
  port?: number;
  username?: string;
  password?: string;
  /** Database number. Default 0. */
  database?: number;
  /**
   * How the store starts its own server when no address is given (it always does then):
   * the program, a port, persistence, an address other machines reach it at (`bind`). Default:
   * `redis-server` from PATH, a free loopback port, nothing kept on disk.
   */
  server?: RedisServerOptions;
  /** Another name of {@link server}. */
  startServer?: RedisServerOptions;
  /**
   * Longest a call waits for the server, in ms (plus transfer time of large values at 50 MB/s)
   * before it rejects with `StoreUnavailableError`. Default 2000.
   */
  commandTimeoutMs?: number;
  /** Longest `open()` and `connectStore()` wait to connect, in ms. Default 5000. */
  connectTimeoutMs?: number;
  /** How often the opener frees values whose TTL has passed, in ms. Default 250. */
  reapIntervalMs?: number;
}

/** The descriptor of a redis store: plain JSON data (the password included, when there is one). */
export interface RedisStoreDescriptor extends StoreDescriptor {
  driver: 'redis';
  /** `redis://host:port/db` of the server, without the password. */
  url: string;
  /**
   * Where every process connects. For a server the store started, 127.0.0.1 — or the address of
   * `server.bind`, so processes on other machines reach it.
   */
  host: string;
  port: number;
  username?: string;
  /** The server's password; for a server started with `server.bind`, the one generated for it. */
  password?: string;
  database?: number;
  tls?: boolean;
  /** Random id of the store. */
  storeId: string;
  /** Prefix of every Redis key of the store: `improv:<storeId>:`. */
  prefix: string;
  /** Prefix of every store key handed out (`r<storeId>-`), so `isKey` knows its own. */
  keyPrefix: string;
  capacityBytes: number;
  eviction: StoreEviction;
  leaseMs: number;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
}

/** A redis store client. */
export interface RedisStoreClient extends StoreClient {
  /** Id of this client in the store (≥ 1), for {@link RedisOpenStore.recoverFromDeadOwner}. */
  readonly ownerId: number;
}

/** What {@link RedisOpenStore.recoverFromDeadOwner} did. */
export interface RedisRecoveryReport {
  ownerId: number;
  /** Holds of the dead client that were ended. */
  releasedHolds: number;
  /** Its allocations that were never flushed (so never sent), freed. */
  freedAllocations: number;
}

/** A redis store opened by {@link createRedisStore}. */
export interface RedisOpenStore extends OpenStore {
  readonly descriptor: RedisStoreDescriptor;
  readonly client: RedisStoreClient;
  /** The server the store started, when it was given no address. */
  readonly server: { readonly host: string; readonly port: number; readonly pid: number } | undefined;
  /** Ends the holds of a client whose worker died, and frees its unflushed allocations. */
  recoverFromDeadOwner(ownerId: number): Promise<RedisRecoveryReport>;
}

/** The redis store driver. */
export interface RedisStoreDriver {
  readonly specificationVersion: 1;
  readonly name: 'redis';
  readonly reach: 'network';
  readonly zeroCopy: false;
  readonly sizeLimits: StoreSizeLimits;
  open(options: StoreOpenOptions): Promise<RedisOpenStore>;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_REAP_INTERVAL_MS = 250;
const MIN_SIZE_BYTES = 1024;
/** 64 TiB: beyond any one Redis server. The real bound is checked at open: the server's memory. */
const STORE = 'redis store';
const MAX_SIZE_BYTES = 2 ** 46;
/** Keys per script call of release() and track(). */
const KEYS_PER_CALL = 1000;
/** How often, at most, a client asks the server which of its followed arrays' values are gone. */
const PRUNE_EVERY_MS = 100;
/** How long a flush waits for that answer before it goes on without it (the answer still applies when it comes). */
const PRUNE_WAIT_MS = 50;

/** How long {@link redisAddressProblem} waits for the address to accept a connection. */
const PROBE_MS = 2000;

/** What {@link redisAddressProblem} found: its words, and which setting is at fault. */
export interface RedisProblem {
  message: string;
  /** `address`: the url, host, port or password; `store_size`: more than the server can hold. */
  setting: 'address' | 'store_size';
}

/**
 * Whether the store could use a Redis server's address (a `url`, or a `host` and `port`, with its
 * `password`), found as the store would (for `improv validate`): something must accept a connection
 * there, take the login and answer a PING; given `sizeBytes`, the server must also be one the store
 * opens with that size (its version, `maxmemory` and memory, as opening checks). Why not, in the
 * words the store's own errors use, or `undefined` when it answers or when there is no address to try.
 */
export async function redisAddressProblem(
  given: {
    url?: string;
    host?: string;
    port?: number;
    password?: string;
  },
  sizeBytes?: number,
): Promise<RedisProblem | undefined> {
  let address: RedisAddress;
  try {
    if (given.url !== undefined) address = parseRedisUrl(given.url);
    else if (given.host !== undefined) address = { host: given.host, port: given.port ?? 6379 };
    else return undefined;
  } catch (error) {
    return { message: (error as Error).message, setting: 'address' };
  }
  if (address.password === undefined && given.password !== undefined) address.password = given.password;
  const unreachable = await new Promise<string | undefined>((resolve) => {
    const socket = createConnection({ host: address.host, port: address.port });
    const done = (cause: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(
        cause === undefined
          ? undefined
          : `redis store: nothing answers at ${describeAddress(address)} (${cause}); start Redis there, or leave host and url out and improv-ts starts a server of its own`,
      );
    };
    const timer = setTimeout(() => done(`no answer within ${PROBE_MS / 1000} s`), PROBE_MS);
    socket.once('connect', () => done(undefined));
    socket.once('error', (error) =>
      done(describeCause(`${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`)),
    );
  });
  if (unreachable !== undefined) return { message: unreachable, setting: 'address' };
  // Something listens: log in as the store will and ask it something (a wrong or missing password,
  // or a service that is not Redis, shows here).
  let connection: Connection | undefined;
  try {
    connection = await Connection.open(address, { commandTimeoutMs: PROBE_MS, connectTimeoutMs: PROBE_MS });
    await connection.command(['PING']);
    if (sizeBytes !== undefined) await checkServer(connection, sizeBytes);
    return undefined;
  } catch (error) {
    // checkServer says a size it cannot hold with a RangeError.
    return { message: (error as Error).message, setting: error instanceof RangeError ? 'store_size' : 'address' };
  } finally {
    await connection?.close().catch(() => {});
  }
}

/**
 * Creates the `redis` driver.
 *
 * @example
 * ```ts
 * createRedisStore();                                    // starts (and stops) its own redis-server
 * createRedisStore({ url: 'redis://10.0.0.5:6379' });   // a running server
 * createRedisStore({ server: { persistence: { dir: './redis-data', fsync: 'everysec' } } });
 * createRedisStore({ server: { bind: '10.0.0.5' } });       // its own, reached from other machines too
 * ```
 */
export function createRedisStore(options: RedisStoreOptions = {}): RedisStoreDriver {
  const commandTimeoutMs = positive(options.commandTimeoutMs, DEFAULT_COMMAND_TIMEOUT_MS, 'commandTimeoutMs');
  const connectTimeoutMs = positive(options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, 'connectTimeoutMs');
  const reapIntervalMs = positive(options.reapIntervalMs, DEFAULT_REAP_INTERVAL_MS, 'reapIntervalMs');
  const address = addressOf(options);
  const serverOptions = options.server ?? options.startServer ?? {};
  if (address !== undefined && (options.server !== undefined || options.startServer !== undefined)) {
    throw new TypeError(
      'redis store: give either the address of a running server (url, or host and port) or server options for a server of its own, not both',
    );
  }
  if (serverOptions.bind !== undefined) checkBind(serverOptions.bind);
  return {
    specificationVersion: 1,
    name: 'redis',
    reach: 'network',
    zeroCopy: false,
    sizeLimits: { driver: 'redis', minBytes: MIN_SIZE_BYTES, maxBytes: MAX_SIZE_BYTES },
    async open(openOptions) {
      const sizeBytes = checkSize(openOptions.sizeBytes);
      const eviction = openOptions.eviction ?? 'none';
      if (eviction !== 'none' && eviction !== 'oldest') {
        throw new RangeError(`redis store: settings.store_eviction must be none or oldest, got ${String(eviction)}`);
      }
      const leaseMs = positive(openOptions.leaseMs, DEFAULT_STORE_LEASE_MS, 'leaseMs');
      const times = { commandTimeoutMs, connectTimeoutMs };

      let server: RunningServer | undefined;
      let target: RedisAddress;
      /** Where other processes connect: the target, or the bind address of the store's own server. */
      let published: RedisAddress;
      if (address === undefined) {
        const memory = totalmem();
        if (sizeBytes > memory) {
          throw new RangeError(
            `redis store: settings.store_size of ${formatBytes(sizeBytes)} (${sizeBytes} bytes) is more than the ${formatBytes(memory)} of memory this machine has; lower settings.store_size, or use a Redis server on a larger machine (settings.redis: { host, port })`,
          );
        }
        server = await startRedisServer(serverOptions, serverMaxmemory(sizeBytes));
        const password = server.password === undefined ? {} : { password: server.password };
        // The opener itself stays on loopback.
        target = { host: server.host, port: server.port, ...password };
        published = { host: server.bind ?? server.host, port: server.port, ...password };
      } else {
        target = address;
        published = address;
      }

      let connection: Connection | undefined;
      try {
        connection = await Connection.open(target, times);
        if (server === undefined) await checkServer(connection, sizeBytes);
        const storeId = randomId();
        const descriptor: RedisStoreDescriptor = {
          module: import.meta.url,
          driver: 'redis',
          url: urlOf(published),
          host: published.host,
          port: published.port,
          ...(published.username === undefined ? {} : { username: published.username }),
          ...(published.password === undefined ? {} : { password: published.password }),
          ...(published.database === undefined ? {} : { database: published.database }),
          ...(published.tls ? { tls: true } : {}),
          storeId,
          prefix: `improv:${storeId}:`,
          keyPrefix: `r${storeId}-`,
          capacityBytes: sizeBytes,
          eviction,
          leaseMs,
          commandTimeoutMs,
          connectTimeoutMs,
        };
        // Clients in other languages (improv_ts's Python client) run these very scripts: the one copy.
        await connection.command([
          'HSET',
          `${descriptor.prefix}scripts`,
          ...allScripts.flatMap((script) => [script.name, script.source]),
        ]);
        const client = await RedisClient.create(descriptor, connection);
        connection = undefined;
        return openStore(descriptor, client, server, reapIntervalMs);
      } catch (error) {
        connection?.destroy();
        await server?.stop();
        throw error;
      }
    },
  };
}

/** Builds a client from a redis store descriptor, in any worker or process that reaches the server. */
export const connectStore: ConnectStore = async (descriptor) => {
  const candidate = descriptor as Partial<RedisStoreDescriptor>;
  if (
    descriptor.driver !== 'redis' ||
    typeof candidate.host !== 'string' ||
    typeof candidate.port !== 'number' ||
    typeof candidate.prefix !== 'string' ||
    typeof candidate.keyPrefix !== 'string' ||
    typeof candidate.capacityBytes !== 'number'
  ) {
    throw new TypeError(
      `redis store: connectStore got a descriptor of driver "${String(descriptor.driver)}" that is not an open redis store (it needs host, port, prefix, keyPrefix and capacityBytes); pass the descriptor of createRedisStore().open() unchanged`,
    );
  }
  const full = descriptor as RedisStoreDescriptor;
  const connection = await Connection.open(addressOfDescriptor(full), {
    commandTimeoutMs: full.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    connectTimeoutMs: full.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
  });
  try {
    if ((await connection.command<number>(['EXISTS', `${full.prefix}closed`])) === 1) {
      throw new Error(
        `redis store: the store ${full.storeId} on ${connection.where} was closed (its pipeline run ended) and its values are gone`,
      );
    }
    return await RedisClient.create(full, connection);
  } catch (error) {
    connection.destroy();
    throw error;
  }
};

function openStore(
  descriptor: RedisStoreDescriptor,
  client: RedisClient,
  server: RunningServer | undefined,
  reapIntervalMs: number,
): RedisOpenStore {
  let closed = false;
  let reaping = false;
  // Frees values whose TTL has passed while nobody reads them; reads and puts also do it on the way.
  const timer = setRepeating(() => {
    if (reaping || !client.connection.isReady) return;
    reaping = true;
    client
      .reap()
      .catch(() => {})
      .finally(() => {
        reaping = false;
      });
  }, reapIntervalMs);
  timer.unref();
  return {
    descriptor,
    client,
    server: server === undefined ? undefined : { host: server.host, port: server.port, pid: server.pid },
    recoverFromDeadOwner: (ownerId) => client.recover(ownerId),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      if (server !== undefined) {
        // The server goes, and everything in it.
        client.connection.destroy();
        await client.close();
        await server.stop();
        return;
      }
      try {
        await client.removeStore();
      } finally {
        await client.close();
      }
    },
  };
}

/** One unflushed allocation of this client. */
interface Pending {
  array: TypedArray;
  code: number;
  shape: readonly number[];
}

class RedisClient implements RedisStoreClient {
  readonly ownerId: number;
  readonly connection: Connection;
  private readonly prefix: string;
  private readonly keyPrefix: string;
  private readonly descriptor: RedisStoreDescriptor;
  /** Part of every key this client makes: its id and a random salt (ids restart with a wiped server). */
  private readonly tag: string;
  private readonly ownerArg: string;
  private readonly leaseArg: string;
  /** '1' when the store evicts (a read then holds what it reads), else ''. */
  private readonly evictingArg: string;
  private counter = 0;
  private closed = false;
  /** Where the arrays of allocate() come from. */
  private readonly localArrays = new LocalArrays();
  /** Allocations not yet written to Redis. */
  private readonly pending = new Map<StoreKey, Pending>();
  /** Whether this client took a hold (a read) since its last release(): else release() has nothing to do. */
  private holding = false;
  /** Keys of puts that failed with the server away: they may have been stored; deleted once it is back. */
  private readonly orphans = new Set<string>();
  /** Flushed allocations, written again when they change. */
  private readonly follower = new Follower();
  /** Reads large arrays straight into their memory (Node only). */
  private reader: BulkReader | undefined;
  private readerRetryAt = 0;
  private flushing: Promise<void> = Promise.resolve();
  /** When the followed arrays were last checked against the server (performance.now()), and whether a check is under way. */
  private prunedAt = Number.NEGATIVE_INFINITY;
  private pruning = false;

  private constructor(descriptor: RedisStoreDescriptor, connection: Connection, ownerId: number) {
    this.descriptor = descriptor;
    this.connection = connection;
    this.prefix = descriptor.prefix;
    this.keyPrefix = descriptor.keyPrefix;
    this.ownerId = ownerId;
    this.ownerArg = String(ownerId);
    this.leaseArg = String(descriptor.leaseMs);
    this.evictingArg = descriptor.eviction === 'oldest' ? '1' : '';
    this.tag = `${ownerId.toString(36)}${randomSalt()}`;
  }

  static async create(descriptor: RedisStoreDescriptor, connection: Connection): Promise<RedisClient> {
    const ownerId = await connection.command<number>(['INCR', `${descriptor.prefix}clients`]);
    return new RedisClient(descriptor, connection, Number(ownerId));
  }

  // ---- values ----------------------------------------------------------------------------------

  async put(value: unknown, options?: PutOptions): Promise<StoreKey> {
    this.assertOpen();
    const ttl = ttlArg(options?.ttlMs, 'put()');
    const code = dtypeCodeOf(value);
    let data: Buffer;
    let header: Buffer;
    if (code === 0) {
      if (options?.shape !== undefined) {
        throw new TypeError(
          `redis store: put() got a shape for a value of type ${typeof value}; shapes describe typed arrays only. Drop the shape, or store a typed array`,
        );
      }
      data = encodeValue(value);
      checkValueSize(data.byteLength, 'put()');
      header = encodeHeader(0, data.byteLength, undefined);
    } else {
      const array = value as TypedArray;
      if (options?.shape !== undefined) checkShape(options.shape, array.length, 'put()', STORE);
      // Checked before anything is sent: a value over Redis's limit never leaves this process.
      checkValueSize(array.byteLength, 'put()');
      header = encodeHeader(code, array.byteLength, options?.shape ?? [array.length]);
      // The array's own memory goes to the socket: no copy. It has been sent when put() resolves.
      data = bytesOf(array);
    }
    const key = this.newKey();
    await this.store(key, data, header, data.byteLength + header.byteLength, ttl, '');
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
        `redis store: allocate() got an unknown kind "${String(kind)}"; use one of ${typedArrayKinds.join(', ')}`,
      );
    }
    let shape: readonly number[];
    let length: number;
    if (typeof shapeOrLength === 'number') {
      checkDimension(shapeOrLength, 'length', 'allocate()', STORE);
      length = shapeOrLength;
      shape = [length];
    } else if (Array.isArray(shapeOrLength)) {
      length = checkShape(shapeOrLength, undefined, 'allocate()', STORE);
      shape = [...shapeOrLength];
    } else {
      throw new TypeError(
        `redis store: allocate() takes a length or a shape (array of lengths), got ${typeof shapeOrLength}`,
      );
    }
    const ttl = ttlArg(options?.ttlMs, 'allocate()');
    const ctor = typedArrayConstructors[code - 1]!;
    const dataBytes = length * ctor.BYTES_PER_ELEMENT;
    checkValueSize(dataBytes, 'allocate()');
    const header = encodeHeader(code, dataBytes, shape);
    const key = this.newKey();
    // Redis gets an empty string until flush(): readers elsewhere see zeros.
    await this.store(key, EMPTY, header, dataBytes + header.byteLength, ttl, this.ownerArg);
    const array = ofDtype(code, this.localArrays.take(code, length)) as TypedArrayKinds[K];
    this.pending.set(key, { array, code, shape });
    return { key, array, dtype: kind, shape: [...shape] };
  }

  hasUnflushed(): boolean {
    return this.pending.size > 0 || this.follower.size > 0;
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0 && this.follower.size === 0) return;
    this.assertOpen();
    const pruning = this.pruneFollowed();
    if (pruning !== undefined) await pruning;
    if (this.pending.size === 0 && this.follower.size === 0) return;
    // One flush at a time: a snapshot being sent is not reused before its write has completed.
    const run = this.flushing.then(() => this.flushNow());
    this.flushing = run.catch(() => {});
    return run;
  }

  /**
   * Stops following arrays whose values are gone (deleted by their reader, expired, evicted): at
   * most every {@link PRUNE_EVERY_MS}, one round trip, which the flush waits for up to
   * {@link PRUNE_WAIT_MS} (an actor that sends flat out and never yields would otherwise not see
   * the answer for a long while); undefined when no check is due, so such a flush awaits nothing
   * extra. An array stays alive to its `WeakRef` until a full garbage collection, so without this
   * every flush (each message the actor sends, each step's end) would compare up to 4 MiB of frames
   * its sink deleted long ago: a source that had allocated 400 KiB frames then sent 8 B messages at
   * 8 k a second instead of hundreds of k.
   */
  private pruneFollowed(): Promise<void> | undefined {
    const now = performance.now();
    if (this.pruning || this.follower.size === 0 || now - this.prunedAt < PRUNE_EVERY_MS) return undefined;
    this.pruning = true;
    this.prunedAt = now;
    const keys = this.follower.keys();
    const pruned = this.transaction(keys.map((key) => ['EXISTS', `${this.prefix}v:${this.name(key)}`]))
      .then((replies) => {
        for (const [index, reply] of replies.entries()) if (Number(reply) === 0) this.follower.forget(keys[index]!);
      })
      // The server away: the arrays are compared a while longer, and checked again at a later flush.
      .catch(() => {})
      .finally(() => {
        this.pruning = false;
      });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, PRUNE_WAIT_MS);
    });
    return Promise.race([pruned, waited]).finally(() => clearTimeout(timer));
  }

  private async flushNow(): Promise<void> {
    const changes: { key: StoreKey; array: TypedArray; code: number; shape: readonly number[]; first: boolean }[] = [];
    for (const [key, { array, code, shape }] of this.pending) changes.push({ key, array, code, shape, first: true });
    // Arrays flushed before and still alive: written again when they changed.
    for (const { key, array, entry } of this.follower.changed()) {
      changes.push({ key, array, code: entry.code, shape: entry.shape, first: false });
    }
    if (changes.length === 0) return;
    const results = await Promise.allSettled(
      changes.map(async ({ key, array, code, shape, first }) => {
        const written = this.follower.prepare(array);
        const name = this.name(key);
        const data = written.data;
        try {
          if (data.byteLength <= INLINE_BYTES) {
            await this.script(scripts.flushed, [this.prefix, this.ownerArg, name, data]);
          } else {
            // XX: a value deleted (or expired) meanwhile is not brought back.
            await this.transaction(
              [
                ['SET', `${this.prefix}v:${name}`, data, 'XX'],
                ['EVALSHA', scripts.flushed.sha, '0', this.prefix, this.ownerArg, name],
              ],
              data.byteLength,
            );
          }
        } catch (error) {
          this.follower.dropPool();
          throw error;
        }
        if (first) {
          if (this.pending.get(key)?.array !== array) return; // deleted or re-allocated meanwhile
          this.pending.delete(key);
        }
        this.follower.follow(key, array, code, shape, written);
      }),
    );
    const failed = results.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  }

  async get<T = unknown>(key: StoreKey): Promise<T> {
    return (await this.read(key, false)) as T;
  }

  async getArray<T extends TypedArray = TypedArray>(key: StoreKey): Promise<ShapedArray<T>> {
    return (await this.read(key, true)) as ShapedArray<T>;
  }

  async info(key: StoreKey): Promise<StoredInfo> {
    this.assertOpen();
    const name = this.nameOf(key);
    const status = await this.script<unknown[]>(scripts.read, [this.prefix, name, '', this.leaseArg]);
    const header = this.headerOf(key, status);
    if (header.code === 0) return { key, kind: 'value', byteLength: header.byteLength };
    return { key, kind: 'array', dtype: kindOf(header.code), shape: header.shape, byteLength: header.byteLength };
  }

  async has(key: StoreKey): Promise<boolean> {
    this.assertOpen();
    if (!this.isKey(key)) return false;
    const status = await this.script<unknown[]>(scripts.read, [this.prefix, this.name(key), '', this.leaseArg]);
    return Number(status[0]) === 1;
  }

  async delete(key: StoreKey): Promise<boolean> {
    this.assertOpen();
    if (!this.isKey(key)) return false;
    const freed = await this.script<number>(scripts.delete, [this.prefix, this.name(key)]);
    this.pending.delete(key);
    this.follower.forget(key);
    return Number(freed) === 1;
  }

  isKey(value: string): boolean {
    if (typeof value !== 'string' || !value.startsWith(this.keyPrefix)) return false;
    return KEY_NAME.test(value.slice(this.keyPrefix.length));
  }

  // ---- holds -----------------------------------------------------------------------------------

  async release(key?: StoreKey): Promise<void> {
    this.assertOpen();
    if (key !== undefined) {
      // An unflushed allocation stays held until its flush: its frame is not in the store yet.
      if (!this.isKey(key) || this.pending.has(key)) return;
      await this.script(scripts.release, [this.prefix, this.ownerArg, this.name(key)]);
      return;
    }
    if (!this.holding) return;
    this.holding = false;
    try {
      await this.script(scripts.release, [this.prefix, this.ownerArg]);
    } catch (error) {
      this.holding = true;
      throw error;
    }
  }

  async track(keys: readonly StoreKey[], delta: number): Promise<void> {
    this.assertOpen();
    if (!Number.isSafeInteger(delta)) {
      throw new RangeError(`redis store: track() needs an integer delta, got ${String(delta)}`);
    }
    if (delta === 0) return;
    const names = keys.filter((key) => this.isKey(key)).map((key) => this.name(key));
    for (let start = 0; start < names.length; start += KEYS_PER_CALL) {
      await this.script(scripts.track, [this.prefix, String(delta), ...names.slice(start, start + KEYS_PER_CALL)]);
    }
  }

  // ---- store -----------------------------------------------------------------------------------

  async usage(): Promise<StoreUsage> {
    this.assertOpen();
    const [used, objects] = await this.script<number[]>(scripts.usage, [this.prefix, '100']);
    return { usedBytes: Number(used), capacityBytes: this.descriptor.capacityBytes, objects: Number(objects) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.connection.isReady) {
      // What was written in place is in the store from the writer's point of view; holds end.
      await this.flush().catch(() => {});
      await this.release().catch(() => {});
    }
    this.closed = true;
    this.follower.clear();
    this.reader?.close();
    await this.connection.close();
  }

  /** Frees due TTL values (the opener's timer). */
  async reap(): Promise<number> {
    const [, , reaped] = await this.script<number[]>(scripts.usage, [this.prefix, '1000']);
    return Number(reaped);
  }

  async recover(ownerId: number): Promise<RedisRecoveryReport> {
    this.assertOpen();
    if (!Number.isSafeInteger(ownerId) || ownerId < 1 || ownerId === this.ownerId) {
      throw new RangeError(
        `redis store: recoverFromDeadOwner() needs the ownerId of another client (an integer ≥ 1, not ${this.ownerId}), got ${ownerId}`,
      );
    }
    const [holds, freed] = await this.script<number[]>(scripts.recover, [this.prefix, String(ownerId)]);
    return { ownerId, releasedHolds: Number(holds), freedAllocations: Number(freed) };
  }

  /** Deletes every key of the store (close of a store on a server it did not start). */
  async removeStore(): Promise<void> {
    const connection = this.connection;
    // First, so that no put of a client still running recreates the store.
    await connection.command(['SET', `${this.prefix}closed`, '1', 'EX', '86400']);
    let cursor = '0';
    do {
      const [next, keys] = await connection.command<[Buffer, Buffer[]]>([
        'SCAN',
        cursor,
        'MATCH',
        `${this.prefix}*`,
        'COUNT',
        '1000',
      ]);
      cursor = next.toString();
      const doomed = keys.map((name) => name.toString()).filter((name) => name !== `${this.prefix}closed`);
      if (doomed.length > 0) await connection.command(['UNLINK', ...doomed]);
    } while (cursor !== '0');
  }

  // ---- internals -------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) {
      throw new Error('redis store: this client was closed; connect a new one with connectStore(descriptor)');
    }
  }

  private newKey(): StoreKey {
    this.counter++;
    return `${this.keyPrefix}${this.tag}.${this.counter.toString(36)}`;
  }

  /** The key without the store's key prefix: the `<k>` of the Redis keys. */
  private name(key: StoreKey): string {
    return key.slice(this.keyPrefix.length);
  }

  /** `name(key)`, or `ObjectNotFoundError` for a key that is not of this store. */
  private nameOf(key: StoreKey): string {
    if (typeof key !== 'string') {
      throw new TypeError(
        `redis store: a key must be a string, got ${key === null ? 'null' : typeof key}: pass the key that put() or allocate() returned`,
      );
    }
    if (!this.isKey(key)) throw objectNotFound('redis', key, 'foreign');
    return this.name(key);
  }

  /** SET of the value and the put script, in one transaction. */
  private async store(
    key: StoreKey,
    data: Buffer,
    header: Buffer,
    countedBytes: number,
    ttl: string,
    holder: string,
  ): Promise<void> {
    const name = this.name(key);
    const d = this.descriptor;
    const put: Arg[] = [
      'EVALSHA',
      scripts.put.sha,
      '0',
      this.prefix,
      name,
      String(countedBytes),
      String(d.capacityBytes),
      d.eviction,
      String(EVICTION_HIGH_WATER),
      String(EVICTION_LOW_WATER),
      ttl,
      holder,
      this.leaseArg,
      header,
    ];
    let result: unknown[];
    try {
      if (data.byteLength <= INLINE_BYTES) {
        // Small: one script call with the data inline.
        result = await this.script<unknown[]>(scripts.put, [...put.slice(3), data]);
      } else {
        // Large: a plain SET (Redis keeps the bytes it read; no copy into Lua), then the script.
        const replies = await this.transaction([['SET', `${this.prefix}v:${name}`, data], put], data.byteLength);
        result = replies[1] as unknown[];
      }
    } catch (error) {
      // The server may have stored it (or its bytes) before the call failed: delete it once it answers.
      this.orphans.add(name);
      throw error;
    }
    const status = Number(result[0]);
    if (status === 1) return;
    if (status === -1) {
      throw new Error(
        `redis store: the store ${d.storeId} on ${this.connection.where} was closed (its pipeline run ended); nothing more can be stored in it`,
      );
    }
    throw new StoreFullError(
      describeFull(
        d,
        countedBytes - header.byteLength,
        countedBytes,
        result.slice(1).map(Number) as [number, number, number, number, number],
      ),
    );
  }

  /**
   * The read script for this client: `key` found (else `ObjectNotFoundError`), marked read, held
   * where eviction or its TTL could free it; with `inline`, a value of at most that many bytes comes
   * back too (`status[3]`).
   */
  private async lookUp(key: StoreKey, name: string, inline: string): Promise<unknown[]> {
    const status = await this.script<unknown[]>(scripts.read, [
      this.prefix,
      name,
      this.ownerArg,
      this.leaseArg,
      inline,
      this.evictingArg,
    ]);
    this.checkFound(key, status);
    if (Number(status[2]) === 1) this.holding = true;
    return status;
  }

  private async read(key: StoreKey, asArray: boolean): Promise<unknown> {
    this.assertOpen();
    const name = this.nameOf(key);
    const local = this.pending.get(key);
    if (local !== undefined) {
      // Not flushed yet: this client reads its own array (a copy, like every read of this driver).
      await this.lookUp(key, name, '');
      const array = local.array.slice();
      return asArray ? { array, dtype: kindOf(local.code), shape: [...local.shape] } : array;
    }
    const status = await this.lookUp(key, name, INLINE_LIMIT);
    // A small value came with the look-up; a large one is fetched now (this client's hold, or the
    // absence of eviction and TTL, keeps it: only a delete can take it away in between).
    let value = status[3];
    if (value === undefined) {
      const header = this.headerOf(key, status);
      const direct = header.code === 0 ? undefined : await this.readDirect(key, name, header);
      if (direct !== undefined) {
        return asArray ? { array: direct, dtype: kindOf(header.code), shape: header.shape } : direct;
      }
      value = await this.connection.command(['GET', `${this.prefix}v:${name}`], header.byteLength);
      if (value === null) throw objectNotFound('redis', key, 'unknown');
    }
    const header = this.headerOf(key, status);
    const data = asBytes(value);
    if (header.code === 0) {
      if (asArray) {
        throw new TypeError(
          `redis store: key "${key}" holds a msgpack value, not a typed array; read it with get(), or check info(key).kind first`,
        );
      }
      if (data.byteLength !== header.byteLength) throw this.corrupt(key);
      return decodeValue(data);
    }
    const array = arrayOf(data, header);
    return asArray ? { array, dtype: kindOf(header.code), shape: header.shape } : array;
  }

  /**
   * A large array read straight into a fresh array by the bulk reader (Node, plain TCP); undefined
   * when there is no reader (then node-redis reads it).
   */
  private async readDirect(key: StoreKey, name: string, header: Header): Promise<TypedArray | undefined> {
    const reader = this.bulkReader();
    if (reader === undefined) return undefined;
    const ctor = typedArrayConstructors[header.code - 1]!;
    const array = ofDtype(header.code, new ctor(header.byteLength / ctor.BYTES_PER_ELEMENT));
    try {
      const outcome = await reader.read(
        `${this.prefix}v:${name}`,
        new Uint8Array(array.buffer, 0, header.byteLength),
        this.connection.timeoutFor(header.byteLength),
      );
      if (outcome === null) throw objectNotFound('redis', key, 'unknown');
      // Shorter than its header says: an allocation not flushed yet; the rest stays zeros.
      return array;
    } catch (error) {
      if (ObjectNotFoundError.isInstance(error)) throw error;
      this.readerRetryAt = Date.now() + READER_RETRY_MS;
      if (error instanceof ReaderTimeout) throw this.connection.unavailable(error.message, error);
      return undefined;
    }
  }

  private bulkReader(): BulkReader | undefined {
    if (!USE_BULK_READER || this.connection.address.tls) return undefined;
    if (this.reader?.usable) return this.reader;
    if (Date.now() < this.readerRetryAt) return undefined;
    this.reader = new BulkReader(this.connection.address, this.descriptor.connectTimeoutMs);
    return this.reader;
  }

  /** A script call; afterwards, deletes what failed puts may have left while the server was away. */
  private async script<T = unknown>(script: Script, args: readonly Arg[]): Promise<T> {
    const reply = await this.connection.script<T>(script, args);
    if (this.orphans.size > 0) this.cleanOrphans();
    return reply;
  }

  /** A transaction; afterwards, deletes what failed puts may have left while the server was away. */
  private async transaction(commands: readonly (readonly Arg[])[], bytes = 0): Promise<unknown[]> {
    const replies = await this.connection.transaction(commands, bytes);
    for (const reply of replies) {
      if (reply instanceof Error) throw this.connection.translate(reply);
    }
    if (this.orphans.size > 0) this.cleanOrphans();
    return replies;
  }

  private cleanOrphans(): void {
    for (const name of [...this.orphans]) {
      this.orphans.delete(name);
      this.connection
        .transaction([
          ['EVALSHA', scripts.delete.sha, '0', this.prefix, name],
          ['DEL', `${this.prefix}v:${name}`],
        ])
        .catch(() => this.orphans.add(name));
    }
  }

  /** The header a read script returned, or `ObjectNotFoundError` saying why there is none. */
  private headerOf(key: StoreKey, status: unknown): Header {
    this.checkFound(key, status);
    const header = readHeader(asBytes((status as unknown[])[1]));
    if (header === undefined) throw this.corrupt(key);
    return header;
  }

  private checkFound(key: StoreKey, status: unknown): void {
    const result = status as unknown[];
    if (Number(result[0]) === 1) return;
    const reason = String(result[1] ?? 'unknown');
    throw objectNotFound('redis', key, reason === 'evicted' || reason === 'expired' ? reason : 'unknown');
  }

  private corrupt(key: StoreKey): Error {
    return new Error(
      `redis store: the value under key "${key}" is not in the store's format (something else wrote to ${this.prefix}v:${this.name(key)} or ${this.prefix}m:${this.name(key)} on ${this.connection.where})`,
    );
  }
}

/**
 * Values up to this size travel inline with their script call (one command, data copied into a Lua
 * string: cheap when small); larger ones as a plain SET or GET of their own.
 */
const INLINE_BYTES = 128 * 1024;
const INLINE_LIMIT = String(INLINE_BYTES);
/** Large arrays are read by the bulk reader on Node (see _redis-reader.ts). */
const USE_BULK_READER = isNode();
/** After the bulk reader failed, node-redis reads for this long before a new reader is tried. */
const READER_RETRY_MS = 1000;

/** A Redis string of nothing: an allocation before its flush. */
const EMPTY = Buffer.alloc(0);

/** `<client tag>.<counter>`, both base 36. */
const KEY_NAME = /^[0-9a-z]{1,16}\.[0-9a-z]{1,11}$/;

function asBytes(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'latin1');
  return Buffer.alloc(0);
}

function describeFull(
  descriptor: RedisStoreDescriptor,
  dataBytes: number,
  askedBytes: number,
  [used, objects, held, unread, inFlight]: [number, number, number, number, number],
): string {
  const capacity = descriptor.capacityBytes;
  const free = Math.max(capacity - used, 0);
  const eviction =
    descriptor.eviction === 'oldest'
      ? ` Eviction (settings.store_eviction: oldest) found nothing more to free: of the ${objects} values, ${held} are held by a reader, ${unread} were not read yet and ${inFlight} have messages waiting in a link.`
      : '';
  return `redis store is full: a value of ${formatBytes(dataBytes)} needs ${formatBytes(askedBytes)} (${askedBytes} bytes with the header), and ${formatBytes(free)} (${free} bytes) of ${formatBytes(capacity)} is free.${eviction} Raise settings.store_size, or delete values once every reader is done with them`;
}

function checkValueSize(dataBytes: number, method: string): void {
  if (dataBytes > MAX_VALUE_BYTES) {
    throw new RangeError(
      `redis store: ${method}: a value of ${formatBytes(dataBytes)} (${dataBytes} bytes) is over Redis's limit of 512 MiB (${MAX_VALUE_BYTES} bytes) per value: a value is one Redis string, and Redis refuses larger ones (proto-max-bulk-len). Split it into several values`,
    );
  }
}

function ttlArg(ttlMs: number | undefined, method: string): string {
  if (ttlMs === undefined) return '';
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError(
      `redis store: ${method}: ttlMs must be a positive number of milliseconds, got ${String(ttlMs)}`,
    );
  }
  return String(Math.ceil(ttlMs));
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`redis store: ${name} must be a positive number of milliseconds, got ${String(value)}`);
  }
  return value;
}

function checkSize(sizeBytes: number): number {
  if (typeof sizeBytes !== 'number' || !Number.isSafeInteger(sizeBytes) || sizeBytes < MIN_SIZE_BYTES) {
    throw new RangeError(
      `redis store: settings.store_size must be a whole number of bytes of at least ${MIN_SIZE_BYTES}, got ${String(sizeBytes)}`,
    );
  }
  if (sizeBytes > MAX_SIZE_BYTES) {
    throw new RangeError(
      `redis store: settings.store_size of ${formatBytes(sizeBytes)} is over the redis driver's limit of ${formatBytes(MAX_SIZE_BYTES)}`,
    );
  }
  return sizeBytes;
}

/** The address of the options, or undefined: start a server. */
function addressOf(options: RedisStoreOptions): RedisAddress | undefined {
  if (options.url !== undefined) {
    if (options.host !== undefined || options.port !== undefined) {
      throw new TypeError('redis store: give either url or host and port, not both');
    }
    const address = parseRedisUrl(options.url);
    if (options.username !== undefined) address.username = options.username;
    if (options.password !== undefined) address.password = options.password;
    if (options.database !== undefined) address.database = options.database;
    return address;
  }
  if (options.host === undefined && options.port === undefined) return undefined;
  if (options.host !== undefined && (typeof options.host !== 'string' || options.host === '')) {
    throw new TypeError(`redis store: host must be a host name or address, got ${String(options.host)}`);
  }
  const port = options.port ?? 6379;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new RangeError(`redis store: port must be a port number from 1 to 65535, got ${String(options.port)}`);
  }
  return {
    host: options.host ?? '127.0.0.1',
    port,
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: options.password }),
    ...(options.database === undefined ? {} : { database: options.database }),
  };
}

function addressOfDescriptor(descriptor: RedisStoreDescriptor): RedisAddress {
  return {
    host: descriptor.host,
    port: descriptor.port,
    ...(descriptor.username === undefined ? {} : { username: descriptor.username }),
    ...(descriptor.password === undefined ? {} : { password: descriptor.password }),
    ...(descriptor.database === undefined ? {} : { database: descriptor.database }),
    ...(descriptor.tls ? { tls: true } : {}),
  };
}

function urlOf(address: RedisAddress): string {
  return `${address.tls ? 'rediss' : 'redis'}://${describeAddress(address)}/${address.database ?? 0}`;
}

/** A server of the user's: new enough, and with room for the store. */
async function checkServer(connection: Connection, sizeBytes: number): Promise<void> {
  const info = (await connection.command<Buffer | string>(['INFO'])).toString();
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
  const version = field('redis_version') ?? '';
  const major = Number(version.split('.')[0]);
  if (Number.isFinite(major) && major > 0 && major < 5) {
    throw new Error(
      `redis store: the Redis server at ${connection.where} is version ${version}; the store needs Redis 5 or newer`,
    );
  }
  const maxmemory = Number(field('maxmemory') ?? 0);
  if (maxmemory > 0 && sizeBytes > maxmemory) {
    throw new RangeError(
      `redis store: settings.store_size of ${formatBytes(sizeBytes)} (${sizeBytes} bytes) is more than the maxmemory of the Redis server at ${connection.where}, ${formatBytes(maxmemory)}; lower settings.store_size or raise the server's maxmemory`,
    );
  }
  const memory = Number(field('total_system_memory') ?? 0);
  if (memory > 0 && sizeBytes > memory) {
    throw new RangeError(
      `redis store: settings.store_size of ${formatBytes(sizeBytes)} (${sizeBytes} bytes) is more than the ${formatBytes(memory)} of memory of the machine of the Redis server at ${connection.where}; lower settings.store_size`,
    );
  }
}

function randomId(): string {
  const random = new Uint32Array(2);
  crypto.getRandomValues(random);
  return `${random[0]!.toString(36).padStart(7, '0')}${random[1]!.toString(36).padStart(7, '0')}`;
}

function randomSalt(): string {
  const random = new Uint32Array(1);
  crypto.getRandomValues(random);
  return (random[0]! % 36 ** 4).toString(36).padStart(4, '0');
}
