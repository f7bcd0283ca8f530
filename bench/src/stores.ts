/**
 * The store of a bench run (`--store memory|lmdb|redis`): a driver for each pipeline, and for the
 * copying stores their raw baseline — the store's own client library (lmdb-js, the `redis` client)
 * putting and getting the same payload in the bench's main thread, measured in the same run.
 *
 * - `memory`: a new memory store per pipeline (the default; no raw baseline: memcpy and the raw ring
 *   are its floor).
 * - `lmdb`: one fresh temp folder for the run (removed at the end), a new LMDB store in it per
 *   pipeline, with the driver's defaults (`keep: false`, `sync: false`, as `settings.lmdb`). The raw
 *   baseline opens lmdb-js in the same folder, as the driver does (no sync).
 * - `redis`: the driver starts its own `redis-server` on a free loopback port (so a missing
 *   `redis-server` fails with the driver's own message); every pipeline connects to that server by
 *   its URL, and the raw baseline uses the same server through the same `redis` client package.
 *   With `bind` (`--placement hosts`) the server also listens on that address of this machine, behind
 *   the password the driver makes, so actors on other hosts reach it; the pipelines and the raw
 *   baseline then connect there too.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import type { OpenStore, StoreDriver, StoreName } from '@improv/core';
import { createMemoryStore } from '@improv/store';
import type { Rate, StoreBaselineRow } from './results.ts';
import { summarize } from './stats.ts';

/** The store of one bench run. */
export interface BenchStore {
  readonly name: StoreName;
  /** Where it lives, for the report. */
  readonly detail: string;
  readonly zeroCopy: boolean;
  /** A driver for one more pipeline. */
  driver(): Promise<StoreDriver>;
  /** What the raw baseline times (copying stores only). */
  readonly baselineName?: string;
  /** The raw baseline at one size: `count` timed put+get pairs, then pairs flat out for `durationUs`. */
  baseline?(size: number, count: number, durationUs: number): Promise<StoreBaselineRow>;
  /** Frees what the run used: servers, temp folders. Safe to call more than once. */
  close(): Promise<void>;
}

/** The store of `--store` could not be opened (e.g. no redis-server): the driver's own message, no stack. */
export class StoreOpenError extends Error {
  constructor(store: StoreName, cause: unknown) {
    super(`the ${store} store did not open: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'StoreOpenError';
  }
}

/**
 * Opens the store `name` for a bench run. Fails with the driver's own message when it cannot.
 * `bind` (redis only): an address of this machine other hosts reach, where the server listens too.
 */
export async function openBenchStore(name: StoreName, options: { bind?: string } = {}): Promise<BenchStore> {
  if (options.bind !== undefined && name !== 'redis') {
    throw new TypeError(`bench: only the redis store can be reached from other hosts, not ${name}`);
  }
  if (name === 'lmdb') return openLmdb();
  if (name === 'redis') return openRedis(options.bind);
  return {
    name: 'memory',
    detail: 'one SharedArrayBuffer arena per pipeline',
    zeroCopy: true,
    driver: async () => createMemoryStore(),
    close: async () => {},
  };
}

/** What a raw baseline needs of a store client: write `data` under one key, read it back. */
interface RawClient {
  put(data: Buffer): Promise<unknown>;
  get(): Promise<Uint8Array | null | undefined> | Uint8Array | null | undefined;
}

async function openLmdb(): Promise<BenchStore> {
  const { createLmdbStore } = await import('@improv/store/lmdb');
  const folder = await mkdtemp(path.join(tmpdir(), 'improv-bench-lmdb-'));
  let pipelines = 0;
  let closed = false;
  return {
    name: 'lmdb',
    detail: `a new store per pipeline in a fresh folder under ${tmpdir()} (keep: false, sync: false), removed after the run`,
    zeroCopy: false,
    driver: async () =>
      createLmdbStore({ path: path.join(folder, `pipeline-${++pipelines}.lmdb`), keep: false, sync: false }),
    baselineName: 'lmdb-js in this thread: `await db.put(key, payload)`, then `db.getBinary(key)`',
    async baseline(size, count, durationUs) {
      const { open } = await import('lmdb');
      // As the driver opens its environment without sync: commits are not flushed to disk one by one.
      const db = open({
        path: path.join(folder, `raw-${size}.lmdb`),
        encoding: 'binary',
        compression: false,
        noSync: true,
      });
      const key = `raw-${size}`;
      try {
        return await measureRaw(size, count, durationUs, () => ({
          put: (data) => db.put(key, data),
          get: () => db.getBinary(key),
        }));
      } finally {
        await db.close();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await rm(folder, { recursive: true, force: true });
    },
  };
}

async function openRedis(bind?: string): Promise<BenchStore> {
  const { createRedisStore } = await import('@improv/store/redis');
  // The driver starts the server (and says so clearly when it cannot); it lives until close().
  const server: OpenStore = await createRedisStore(bind === undefined ? {} : { server: { bind } }).open({
    sizeBytes: 1024 * 1_048_576,
  });
  const url = redisUrlOf(server);
  // A server other hosts reach has a password (in the descriptor; never printed).
  const password = (server.descriptor as { password?: unknown }).password;
  const secret = typeof password === 'string' ? { password } : {};
  let version = '';
  try {
    const { createClient } = await import('redis');
    const client = createClient({ url, ...secret });
    await client.connect();
    version = /^redis_version:(.*)$/m.exec(await client.info('server'))?.[1]?.trim() ?? '';
    await client.close();
  } catch (error) {
    await server.close();
    throw error;
  }
  let closed = false;
  return {
    name: 'redis',
    detail:
      bind === undefined
        ? `redis-server ${version} started by the driver at ${url}, no persistence; every pipeline and the raw baseline use it`
        : `redis-server ${version} started by the driver, listening on loopback and at ${url} (the hosts' network) with a generated password, no persistence; every pipeline, the actors on the hosts and the raw baseline use it at ${url}`,
    zeroCopy: false,
    driver: async () => createRedisStore({ url, ...secret }),
    baselineName: '`redis` client in this thread, same server: `await SET key payload`, then `await GET key`',
    async baseline(size, count, durationUs) {
      const { createClient, RESP_TYPES } = await import('redis');
      const client = createClient({ url, ...secret });
      await client.connect();
      const binary = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
      const key = `improv-bench-raw-${process.pid}-${size}`;
      try {
        return await measureRaw(size, count, durationUs, () => ({
          put: (data) => client.set(key, data),
          get: () => binary.get(key),
        }));
      } finally {
        await client.del(key);
        await client.close();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await server.close();
    },
  };
}

/** The URL of the server a Redis store opened on, from its descriptor. */
function redisUrlOf(store: OpenStore): string {
  const descriptor = store.descriptor as Record<string, unknown>;
  if (typeof descriptor.url === 'string') return descriptor.url;
  const host = typeof descriptor.host === 'string' ? descriptor.host : '127.0.0.1';
  if (typeof descriptor.port === 'number') return `redis://${host}:${descriptor.port}`;
  throw new Error(`bench: the redis store's descriptor names no server (${Object.keys(descriptor).join(', ')})`);
}

/** Longest the timed pairs of one size take (fewer than asked when each is slow), µs. */
const RAW_BUDGET_US = 12_000_000;

/**
 * Times `count` put+get pairs of a `size`-byte payload (after a few untimed ones; fewer, but at
 * least 50, when they would take over {@link RAW_BUDGET_US}), each checked, then pairs flat out for
 * `durationUs`.
 */
async function measureRaw(
  size: number,
  count: number,
  durationUs: number,
  connect: () => RawClient,
): Promise<StoreBaselineRow> {
  const payload = Buffer.alloc(size);
  for (let index = 0; index < size; index++) payload[index] = index & 255;
  const client = connect();
  const round = async (index: number): Promise<[number, number, number]> => {
    if (size > 0) payload[0] = index & 255;
    const start = performance.now();
    await client.put(payload);
    const written = performance.now();
    const data = await client.get();
    const end = performance.now();
    if (data === null || data === undefined || data.length !== size || (size > 0 && data[0] !== (index & 255))) {
      throw new Error(`bench: raw store baseline: the value of ${size} B read back is not the one written`);
    }
    return [start, written, end];
  };
  const warm = Math.min(20, count);
  const warmStart = performance.now();
  for (let index = 0; index < warm; index++) await round(index);
  const pairUs = ((performance.now() - warmStart) * 1000) / warm;
  const timed = Math.min(count, Math.max(50, Math.floor(RAW_BUDGET_US / pairUs)));
  const put = new Float64Array(timed);
  const get = new Float64Array(timed);
  const both = new Float64Array(timed);
  for (let index = 0; index < timed; index++) {
    const [start, written, end] = await round(index);
    put[index] = (written - start) * 1000;
    get[index] = (end - written) * 1000;
    both[index] = (end - start) * 1000;
  }
  const cpuBefore = process.cpuUsage();
  const first = performance.now();
  const deadline = first + durationUs / 1000;
  let pairs = 0;
  do await round(pairs++);
  while (performance.now() < deadline);
  const wallUs = (performance.now() - first) * 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const throughput: Rate = {
    messages: pairs,
    seconds: wallUs / 1e6,
    msgsPerS: pairs / (wallUs / 1e6),
    mbPerS: (pairs * size) / wallUs,
    cpuUsPerMsg: (cpu.user + cpu.system) / pairs,
  };
  return { size, put: summarize(put), get: summarize(get), putGet: summarize(both), throughput };
}
