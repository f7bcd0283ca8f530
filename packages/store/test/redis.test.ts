import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  currentRuntimeName,
  detectRuntime,
  ObjectNotFoundError,
  type StoreDescriptor,
  StoreFullError,
  StoreUnavailableError,
} from '@improv/core';
import { describeStoreConformance } from '@improv/core/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startRedisServer } from '../src/_redis-server.ts';
import { connectStore, createRedisStore, type RedisOpenStore } from '../src/redis.ts';
import { spawnStoreProcess } from './_process.ts';

// The adapter of the runtime this file runs in: the suite runs on Node, Bun and Deno.
const runtime = await detectRuntime();
const MiB = 1024 * 1024;
const redisModule = new URL('../src/redis.ts', import.meta.url).href;

/**
 * A redis-server this test starts itself (the stores under test only connect to it). It runs under
 * the driver's watchdog, so it goes even if the test process dies.
 */
interface TestServer {
  port: number;
  pid: number;
  /** Sends `signal` to redis-server itself. */
  signal(signal: NodeJS.Signals): void;
  /** Stops it (if it still runs) and waits until it is gone. */
  stop(): Promise<void>;
}

async function startTestServer(
  options: { port?: number; persistence?: { dir: string; fsync: 'always' } } = {},
): Promise<TestServer> {
  const server = await startRedisServer(options, 256 * MiB);
  return {
    port: server.port,
    pid: server.pid,
    signal(signal) {
      process.kill(server.pid, signal);
    },
    stop: () => server.stop(),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** PING on a fresh connection: true when a server answers PONG within `timeoutMs`. */
function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const finish = (answer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => finish(chunk.toString().startsWith('+PONG')));
    socket.on('error', () => finish(false));
  });
}

/** The first line a server at host:port answers to a bare `PING`, without logging in ('' for none). */
function rawPing(host: string, port: number, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const socket = createConnection({ host, port });
    const finish = (answer: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish(''), timeoutMs);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      text += chunk.toString();
      if (text.includes('\r\n')) finish(text.split('\r\n')[0]!);
    });
    socket.on('error', () => finish(''));
  });
}

/** Whether this machine can listen on `host` (127.0.0.2 can on Linux, not on macOS by default). */
function canListenOn(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(0, host, () => server.close(() => resolve(true)));
  });
}

/** Command lines of every process (`ps`), or undefined where there is no `ps`. */
function commandLines(): string | undefined {
  const result = spawnSync('ps', ['-A', '-o', 'args='], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function caught(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error, 'expected the call to fail').toBeInstanceOf(Error);
  return error as Error;
}

/** Keys of a store on the test server (other than its `closed` mark). */
async function keysOf(port: number, prefix: string): Promise<string[]> {
  const client = await connectStoreLessClient(port);
  try {
    return ((await client.sendCommand(['KEYS', `${prefix}*`])) as string[]).filter((key) => !key.endsWith(':closed'));
  } finally {
    await client.close();
  }
}

async function connectStoreLessClient(port: number) {
  const { createClient } = await import('redis');
  const client = createClient({ socket: { host: '127.0.0.1', port } });
  client.on('error', () => {});
  await client.connect();
  return client;
}

// A server the tests start, shared by the conformance suite "with an address" and most tests below.
const shared = await startTestServer();
afterAll(async () => {
  await shared.stop();
});

describeStoreConformance({
  name: 'redis',
  createDriver: () => createRedisStore({ port: shared.port }),
  runtime,
  spawnProcess: spawnStoreProcess,
});

describeStoreConformance({
  name: 'redis, own server',
  createDriver: () => createRedisStore(),
  runtime,
});

describe('redis store', () => {
  const opened: RedisOpenStore[] = [];
  const open = async (sizeBytes: number, options: Parameters<typeof createRedisStore>[0] = {}, extra = {}) => {
    const store = await createRedisStore({ port: shared.port, ...options }).open({ sizeBytes, ...extra });
    opened.push(store);
    return store;
  };

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close().catch(() => {})));
  });

  it('describes itself and points the descriptor, plain JSON, at the module exporting connectStore', async () => {
    const driver = createRedisStore({ port: shared.port });
    expect(driver.name).toBe('redis');
    expect(driver.specificationVersion).toBe(1);
    expect(driver.reach).toBe('network');
    expect(driver.zeroCopy).toBe(false);
    const store = await open(MiB);
    const module = (await import(store.descriptor.module)) as { connectStore: unknown };
    expect(module.connectStore).toBe(connectStore);
    const json = JSON.parse(JSON.stringify(store.descriptor)) as StoreDescriptor;
    expect(json).toEqual(store.descriptor);
    expect(json).toMatchObject({ driver: 'redis', url: `redis://127.0.0.1:${shared.port}/0` });
    expect(store.descriptor.prefix).toMatch(/^improv:[0-9a-z]+:$/);
    const other = await connectStore(json);
    try {
      const key = await other.put(new Float64Array([1.5, -2]));
      expect(Array.from(await store.client.get<Float64Array>(key))).toEqual([1.5, -2]);
    } finally {
      await other.close();
    }
    expect((await store.client.usage()).capacityBytes).toBe(MiB);
  });

  it('keeps every value under improv:<storeId>: and removes them all when the store closes, leaving the server running', async () => {
    const store = await createRedisStore({ port: shared.port }).open({ sizeBytes: MiB });
    expect(store.server).toBeUndefined();
    const { prefix } = store.descriptor;
    await store.client.put(new Uint8Array(100));
    await store.client.put({ a: 1 }, { ttlMs: 60_000 });
    await store.client.get(await store.client.put('read me'));
    expect((await keysOf(shared.port, prefix)).length).toBeGreaterThan(3);
    expect((await keysOf(shared.port, 'improv:')).every((key) => key.startsWith('improv:'))).toBe(true);
    await store.close();
    expect(await keysOf(shared.port, prefix)).toEqual([]);
    expect(await ping(shared.port)).toBe(true);
    // A client of a closed store cannot bring it back.
    await expect(connectStore(store.descriptor)).rejects.toThrow(/closed/);
  });

  it('starts its own redis-server on a free loopback port and stops it on close: no process left, port free', async () => {
    const store = await createRedisStore().open({ sizeBytes: 4 * MiB });
    const server = store.server!;
    expect(server.host).toBe('127.0.0.1');
    expect(isAlive(server.pid)).toBe(true);
    expect(await ping(server.port)).toBe(true);
    const key = await store.client.put(new Int32Array([1, 2, 3]));
    expect(Array.from(await store.client.get<Int32Array>(key))).toEqual([1, 2, 3]);
    await store.close();
    expect(isAlive(server.pid)).toBe(false);
    expect(await ping(server.port)).toBe(false);
    // The port is free again: something else can listen on it.
    const probe = createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(server.port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });

  it('moves on to the next port when server.port is taken', async () => {
    // Something else listens there, and answers nothing (it reads, so it sees its peers close).
    const blocker = createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const taken = (blocker.address() as { port: number }).port;
    try {
      const server = await startTestServer({ port: taken });
      await server.stop();
      expect(server.port).toBeGreaterThan(taken);
      expect(server.port).toBeLessThanOrEqual(taken + 20);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('stops its own server when the process that opened the store dies (even by SIGKILL)', async () => {
    // A separate process opens a store with its own server, prints the server's pid, then waits.
    const [command, args] = evalCommand(
      `import { createRedisStore } from ${JSON.stringify(redisModule)};
const store = await createRedisStore().open({ sizeBytes: 1024 * 1024 });
console.log(JSON.stringify(store.server));
setInterval(() => {}, 1000);`,
    );
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: repoRoot() });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let text = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          if (text.includes('\n')) resolve(text.split('\n')[0]!);
        });
        child.once('exit', (code) => reject(new Error(`opener exited with ${code}`)));
      });
      const server = JSON.parse(line) as { pid: number; port: number };
      expect(isAlive(server.pid)).toBe(true);
      child.kill('SIGKILL');
      let alive = true;
      for (let index = 0; index < 250 && alive; index++) {
        await sleep(20);
        alive = isAlive(server.pid);
      }
      expect(alive).toBe(false);
      expect(await ping(server.port)).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('connects to a given address and never starts or stops a server there', async () => {
    const store = await createRedisStore({ url: `redis://127.0.0.1:${shared.port}` }).open({ sizeBytes: MiB });
    expect(store.server).toBeUndefined();
    await store.close();
    expect(await ping(shared.port)).toBe(true);
    expect(isAlive(shared.pid)).toBe(true);
  });

  it('says how to install redis-server, or to give an address, when there is none to start', async () => {
    const error = await caught(
      createRedisStore({ server: { command: '/nonexistent/redis-server' } }).open({ sizeBytes: MiB }),
    );
    expect(error.message).toContain('/nonexistent/redis-server');
    expect(error.message).toMatch(/apt-get install redis-server/);
    expect(error.message).toMatch(/brew install redis/);
    expect(error.message).toMatch(/settings\.redis/);
  });

  it('fails with StoreUnavailableError naming host:port within the bound when nothing listens at the address', async () => {
    const port = await freePort();
    const started = Date.now();
    const error = await caught(createRedisStore({ port, connectTimeoutMs: 1000 }).open({ sizeBytes: MiB }));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(StoreUnavailableError.isInstance(error), String(error)).toBe(true);
    expect(error.message).toContain(`127.0.0.1:${port}`);
    const store = await open(MiB);
    const dead = { ...store.descriptor, port, connectTimeoutMs: 800 };
    const failed = await caught(connectStore(dead));
    expect(StoreUnavailableError.isInstance(failed)).toBe(true);
    expect(failed.message).toContain(`127.0.0.1:${port}`);
  });

  it('rejects with StoreUnavailableError within the bound while Redis is down, and works again once it is back, losing nothing', async () => {
    const folder = mkdtempSync(path.join(tmpdir(), 'improv-redis-outage-'));
    // Persistence on (append-only file, fsync on every write), so the restarted server has the values.
    const persistence = { dir: folder, fsync: 'always' as const };
    let server = await startTestServer({ persistence });
    const port = server.port;
    try {
      const store = await createRedisStore({ port, commandTimeoutMs: 1000 }).open({ sizeBytes: 16 * MiB });
      opened.push(store);
      const client = store.client;
      const before = await client.put(new Float32Array([1, 2, 3]), { shape: [3] });
      const kept = await client.put({ note: 'kept' });
      const frame = new Uint16Array(1024 * 1024).map((_, index) => index);
      const big = await client.put(frame, { shape: [1024, 1024] });
      expect(await client.get(big)).toEqual(frame);

      server.signal('SIGKILL');
      await server.stop();
      for (const call of [
        () => client.put(new Float32Array(1000)),
        () => client.get(before),
        () => client.delete(kept),
        () => client.usage(),
      ]) {
        const started = Date.now();
        const error = await caught(call());
        expect(Date.now() - started).toBeLessThan(1500);
        expect(StoreUnavailableError.isInstance(error), String(error)).toBe(true);
        expect(error.message).toContain(`127.0.0.1:${port}`);
        expect(error.message).toMatch(/reconnect/);
      }

      server = await startTestServer({ port, persistence });
      // The client reconnects with backoff (at most 2 s between attempts).
      let after: string | undefined;
      for (let attempt = 0; attempt < 100 && after === undefined; attempt++) {
        after = await client.put(new Int16Array([7, 8])).catch(() => undefined);
        if (after === undefined) await sleep(100);
      }
      expect(after).toBeDefined();
      expect(Array.from(await client.get<Int16Array>(after!))).toEqual([7, 8]);
      expect(Array.from(await client.get<Float32Array>(before))).toEqual([1, 2, 3]);
      expect(await client.get(kept)).toEqual({ note: 'kept' });
      expect(await client.get(big)).toEqual(frame);
      await store.close();
    } finally {
      await server.stop();
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('does not hang on a server that stops answering (SIGSTOP): bounded errors, then it works again, with nothing left over', async () => {
    const server = await startTestServer();
    try {
      const store = await createRedisStore({ port: server.port, commandTimeoutMs: 500 }).open({ sizeBytes: 4 * MiB });
      opened.push(store);
      const client = store.client;
      const kept = await client.put(new Uint8Array([1, 2, 3]));
      const before = await client.usage();
      server.signal('SIGSTOP');
      for (const call of [() => client.put(new Float64Array(100)), () => client.get(kept), () => client.has(kept)]) {
        const started = Date.now();
        const error = await caught(call());
        expect(Date.now() - started).toBeLessThan(1200);
        expect(StoreUnavailableError.isInstance(error), String(error)).toBe(true);
        expect(error.message).toMatch(/no answer within/);
      }
      server.signal('SIGCONT');
      // The put that timed out ran once the server woke up; the client deletes it on its next call.
      expect(Array.from(await client.get<Uint8Array>(kept))).toEqual([1, 2, 3]);
      await sleep(200);
      expect(await client.usage()).toEqual(before);
    } finally {
      server.signal('SIGCONT');
      await server.stop();
    }
  });

  it('refuses a value over 512 MiB (one Redis string) before sending or copying anything', async () => {
    const store = await open(MiB);
    const allocated = await caught(store.client.allocate('float64', 64 * MiB + 1));
    expect(allocated).toBeInstanceOf(RangeError);
    expect(allocated.message).toMatch(/512 MiB/);
    // A large array whose pages are never touched: the check looks at byteLength only.
    const huge = new Uint8Array(512 * MiB + 1);
    const put = await caught(store.client.put(huge));
    expect(put).toBeInstanceOf(RangeError);
    expect(put.message).toMatch(/512 MiB/);
    expect(await store.client.usage()).toMatchObject({ usedBytes: 0, objects: 0 });
  });

  it('refuses a store_size larger than the memory of the machine, naming settings.store_size', async () => {
    const error = await caught(createRedisStore().open({ sizeBytes: 2 ** 45 }));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toMatch(/settings\.store_size/);
    expect(error.message).toMatch(/memory/);
  });

  it('copies typed arrays that view part of a larger buffer, bit-exact for every kind', async () => {
    const store = await open(4 * MiB);
    const backing = new ArrayBuffer(64);
    new Uint8Array(backing).forEach((_, index, bytes) => {
      bytes[index] = index * 37;
    });
    const part = new Float64Array(backing, 8, 4);
    const back = await store.client.get<Float64Array>(await store.client.put(part));
    expect(new Uint8Array(back.buffer, back.byteOffset, back.byteLength)).toEqual(new Uint8Array(backing, 8, 32));
    const nan = new Float32Array([Number.NaN, -0, Number.POSITIVE_INFINITY]);
    const bits = new Uint32Array(nan.buffer.slice(0));
    const nanBack = await store.client.get<Float32Array>(await store.client.put(nan));
    expect(new Uint32Array(nanBack.buffer, nanBack.byteOffset, 3)).toEqual(bits);
    // A large value comes back as a fresh, aligned array.
    const big = new BigInt64Array(MiB / 8).map((_, index) => BigInt(index) * -3n);
    const bigBack = await store.client.get<BigInt64Array>(await store.client.put(big));
    expect(bigBack).toBeInstanceOf(BigInt64Array);
    expect(bigBack.byteOffset % 8).toBe(0);
    expect(bigBack).toEqual(big);
  });

  it('allocate: the key exists at once, other clients read zeros until flush(), this client reads its own array', async () => {
    const store = await open(4 * MiB);
    const other = await connectStore(store.descriptor);
    try {
      const { key, array } = await store.client.allocate('uint8clamped', [2, 3]);
      array.set([1, 2, 3, 4, 5, 300]);
      expect(await other.has(key)).toBe(true);
      expect(await other.info(key)).toEqual({
        key,
        kind: 'array',
        dtype: 'uint8clamped',
        shape: [2, 3],
        byteLength: 6,
      });
      expect(Array.from(await other.get<Uint8ClampedArray>(key))).toEqual([0, 0, 0, 0, 0, 0]);
      expect(Array.from(await store.client.get<Uint8ClampedArray>(key))).toEqual([1, 2, 3, 4, 5, 255]);
      expect((await store.client.usage()).objects).toBe(1);
      await store.client.flush();
      const { array: read, shape } = await other.getArray<Uint8ClampedArray>(key);
      expect(read).toBeInstanceOf(Uint8ClampedArray);
      expect(Array.from(read)).toEqual([1, 2, 3, 4, 5, 255]);
      expect(shape).toEqual([2, 3]);
      // Large arrays (read with a separate GET, on Node straight into the array) too.
      const large = await store.client.allocate('float64', [512, 512]);
      large.array.fill(-2.5);
      const zeros = await other.getArray<Float64Array>(large.key);
      expect(zeros.shape).toEqual([512, 512]);
      expect(zeros.array.length).toBe(512 * 512);
      expect(zeros.array.every((x) => x === 0)).toBe(true);
      await store.client.flush();
      expect((await other.get<Float64Array>(large.key)).every((x) => x === -2.5)).toBe(true);
      large.array[100] = 7;
      await store.client.flush();
      expect((await other.get<Float64Array>(large.key))[100]).toBe(7);
      await store.client.delete(large.key);
      // A value deleted before its flush stays deleted.
      const second = await store.client.allocate('int32', 4);
      await other.delete(second.key);
      await store.client.flush();
      expect(await other.has(second.key)).toBe(false);
      expect((await store.client.usage()).objects).toBe(1);
    } finally {
      await other.close();
    }
  });

  it('stops following a flushed array once another client deleted its value, so later flushes compare nothing', async () => {
    const store = await open(64 * MiB);
    const other = await connectStore(store.descriptor);
    try {
      const followed = () => (store.client as unknown as { follower: { size: number } }).follower.size;
      const frames = [];
      for (let index = 0; index < 4; index++) {
        const frame = await store.client.allocate('uint8', 256 * 1024);
        frame.array.fill(index);
        await store.client.flush();
        frames.push(frame); // alive: a WeakRef alone would keep them followed
      }
      expect(followed()).toBe(4);
      const kept = frames[3]!;
      for (const frame of frames.slice(0, 3)) expect(await other.delete(frame.key)).toBe(true);
      // Checked against the server in the background, at most every 100 ms, when a flush comes.
      const deadline = Date.now() + 10_000; // a guard against a hang, not a timing assertion
      while (followed() !== 1) {
        if (Date.now() > deadline) throw new Error(`still following ${followed()} arrays after 10 s of flushes`);
        await store.client.flush();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // The one whose value is still there is followed as before.
      kept.array[0] = 9;
      await store.client.flush();
      expect((await other.get<Uint8Array>(kept.key))[0]).toBe(9);
    } finally {
      await other.close();
    }
  });

  it('frees a value whose TTL passed, saying it expired, but never while a reader holds it', async () => {
    const store = await open(4 * MiB);
    const client = store.client;
    const lapsing = await client.put(new Uint8Array(10), { ttlMs: 100 });
    const held = await client.put({ held: true }, { ttlMs: 100 });
    expect(await client.get(held)).toEqual({ held: true });
    await sleep(400);
    const error = await caught(client.get(lapsing));
    expect(ObjectNotFoundError.isInstance(error)).toBe(true);
    expect(error.message).toMatch(/expired/);
    expect(error.message).toContain(lapsing);
    expect(await client.has(held)).toBe(true);
    await client.release(held);
    expect(await client.has(held)).toBe(false);
    expect((await caught(client.get(held))).message).toMatch(/expired/);
    expect(await client.usage()).toMatchObject({ usedBytes: 0, objects: 0 });
    // The opener's timer frees expired values nobody reads (nothing else is called here).
    await client.put(new Uint8Array(1000), { ttlMs: 1000 });
    expect((await keysOf(shared.port, `${store.descriptor.prefix}v:`)).length).toBe(1);
    await sleep(1600);
    expect(await keysOf(shared.port, `${store.descriptor.prefix}v:`)).toEqual([]);
  });

  it('lets holds lapse after leaseMs, so a dead reader does not pin values', async () => {
    const store = await open(4 * MiB, {}, { leaseMs: 150 });
    const reader = await connectStore(store.descriptor);
    try {
      const key = await store.client.put(new Uint8Array(8), { ttlMs: 50 });
      await reader.get(key);
      await sleep(100);
      expect(await store.client.has(key)).toBe(true);
      await sleep(400);
      expect(await store.client.has(key)).toBe(false);
    } finally {
      await reader.close();
    }
  });

  it("holds what it reads only where eviction or the value's TTL could free it", async () => {
    const holdsOf = async (store: RedisOpenStore) => (await keysOf(shared.port, `${store.descriptor.prefix}h:`)).length;
    const plain = await open(4 * MiB);
    // Nothing but a delete can free this one: the read takes no hold (and release() has nothing to do).
    const lasting = await plain.client.put(new Uint8Array(8));
    expect(await plain.client.get(lasting)).toEqual(new Uint8Array(8));
    expect(await holdsOf(plain)).toBe(0);
    // A TTL could: held until release().
    const timed = await plain.client.put(new Uint8Array(8), { ttlMs: 60_000 });
    await plain.client.get(timed);
    expect(await holdsOf(plain)).toBe(1);
    await plain.client.release();
    expect(await holdsOf(plain)).toBe(0);
    // Eviction could: every read holds, large values (read with a GET of their own) too.
    const evicting = await open(4 * MiB, {}, { eviction: 'oldest' });
    await evicting.client.get(await evicting.client.put(new Uint8Array(8)));
    await evicting.client.get(await evicting.client.put(new Uint8Array(MiB)));
    expect(await holdsOf(evicting)).toBe(2);
    await evicting.client.release();
    expect(await holdsOf(evicting)).toBe(0);
  });

  it('evicts the oldest read, unheld values (not those in flight, never unread ones) when store_eviction is oldest', async () => {
    const store = await open(MiB, {}, { eviction: 'oldest' });
    const client = store.client;
    const value = () => new Uint8Array(100 * 1024);
    const keys: string[] = [];
    for (let index = 0; index < 9; index++) keys.push(await client.put(value()));
    for (const key of keys) await client.get(key);
    await client.release();
    await client.track([keys[0]!], 1); // a message carrying keys[0] waits in a link
    const newer = await client.put(value()); // over 95 %: evicts down to 85 %
    const evicted = await caught(client.get(keys[1]!));
    expect(ObjectNotFoundError.isInstance(evicted)).toBe(true);
    expect(evicted.message).toMatch(/evicted/);
    expect(await client.has(keys[0]!)).toBe(true);
    expect(await client.has(newer)).toBe(true);
    expect((await client.usage()).usedBytes).toBeLessThanOrEqual(MiB);
    // Unread values are never evicted: a store full of them is full.
    const fresh = await open(MiB, {}, { eviction: 'oldest' });
    let full: unknown;
    for (let index = 0; index < 20 && full === undefined; index++) {
      await fresh.client.put(value()).catch((error: unknown) => {
        full = error;
      });
    }
    expect(StoreFullError.isInstance(full), String(full)).toBe(true);
    expect((full as Error).message).toMatch(/not read yet/);
  });

  it('recovers from a dead client: its holds end and its unflushed allocations are freed', async () => {
    const store = await open(4 * MiB);
    const dying = await connectStore(store.descriptor);
    const { key } = await dying.allocate('float32', 16);
    const read = await store.client.put(new Uint8Array(4), { ttlMs: 50 });
    await dying.get(read);
    const report = await store.recoverFromDeadOwner(dying.ownerId!);
    // The allocation's own hold goes with it; the read's hold is released.
    expect(report).toEqual({ ownerId: dying.ownerId, releasedHolds: 1, freedAllocations: 1 });
    expect(await store.client.has(key)).toBe(false);
    await sleep(100);
    expect(await store.client.has(read)).toBe(false);
    await dying.close();
  });

  it('shares one store with a client in another process', async () => {
    const store = await open(4 * MiB);
    const key = await store.client.put(new Float64Array([Math.PI, -1]), { shape: [2, 1] });
    const [command, args] = evalCommand(
      `import { connectStore } from ${JSON.stringify(redisModule)};
const client = await connectStore(${JSON.stringify(store.descriptor)});
const { array, shape } = await client.getArray(${JSON.stringify(key)});
const reply = await client.put(new Float64Array(array.map((x) => x * 2)), { shape });
console.log(reply);
await client.close();`,
    );
    {
      const reply = await new Promise<string>((resolve, reject) => {
        const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: repoRoot() });
        let text = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        child.once('exit', (code) =>
          code === 0 ? resolve(text.trim()) : reject(new Error(`peer exited with ${code}`)),
        );
      });
      expect(store.client.isKey(reply)).toBe(true);
      const { array, shape } = await store.client.getArray<Float64Array>(reply);
      expect(Array.from(array)).toEqual([2 * Math.PI, -2]);
      expect(shape).toEqual([2, 1]);
    }
  });

  it('validates options with clear errors', () => {
    expect(() => createRedisStore({ url: 'http://x' })).toThrow(/redis:\/\//);
    expect(() => createRedisStore({ url: 'redis://a', host: 'b' })).toThrow(/either url or host/);
    expect(() => createRedisStore({ port: 70_000 })).toThrow(/port/);
    expect(() => createRedisStore({ commandTimeoutMs: 0 })).toThrow(/commandTimeoutMs/);
    expect(() => createRedisStore({ host: 'x', server: {} })).toThrow(/not both/);
  });

  it('fails clearly after the client is closed', async () => {
    const store = await open(MiB);
    const other = await connectStore(store.descriptor);
    await other.close();
    await expect(other.put(1)).rejects.toThrow(/closed/);
    await expect(other.get('x')).rejects.toThrow(/closed/);
  });
});

describe.skipIf(!(await canListenOn('127.0.0.2')))('redis store, own server with server.bind', () => {
  it('listens on the bind address too, behind a generated password that the descriptor carries and ps never shows', async () => {
    const store = await createRedisStore({ server: { bind: '127.0.0.2' } }).open({ sizeBytes: 4 * MiB });
    try {
      const { descriptor } = store;
      const port = descriptor.port;
      expect(descriptor.host).toBe('127.0.0.2');
      expect(descriptor.url).toBe(`redis://127.0.0.2:${port}/0`);
      expect(descriptor.password).toMatch(/^[0-9a-f]{48}$/);
      // The opener itself stays on loopback.
      expect(store.server).toMatchObject({ host: '127.0.0.1', port });
      // A client of another process (or machine) connects through the descriptor alone.
      const other = await connectStore(JSON.parse(JSON.stringify(descriptor)) as StoreDescriptor);
      try {
        const key = await store.client.put(new Float32Array([1.5, -3]), { shape: [2] });
        expect(Array.from(await other.get<Float32Array>(key))).toEqual([1.5, -3]);
        const back = await other.put({ from: 'other' });
        expect(await store.client.get(back)).toEqual({ from: 'other' });
      } finally {
        await other.close();
      }
      // Without the password, the server answers nothing but NOAUTH, on either address.
      expect(await rawPing('127.0.0.2', port)).toMatch(/^-NOAUTH/);
      expect(await rawPing('127.0.0.1', port)).toMatch(/^-NOAUTH/);
      const processes = commandLines();
      if (processes !== undefined) expect(processes).not.toContain(descriptor.password);
    } finally {
      await store.close();
    }
    expect(isAlive(store.server!.pid)).toBe(false);
  });

  it('keeps a loopback-only server as it was: no password, host 127.0.0.1', async () => {
    const store = await createRedisStore().open({ sizeBytes: MiB });
    try {
      expect(store.descriptor.host).toBe('127.0.0.1');
      expect(store.descriptor.password).toBeUndefined();
      expect(await rawPing('127.0.0.1', store.descriptor.port)).toBe('+PONG');
    } finally {
      await store.close();
    }
  });

  it('refuses a bind that is not one IP address with a RangeError naming server.bind', () => {
    for (const bind of ['not-an-address', 'localhost', '0.0.0.0', '::', '']) {
      expect(() => createRedisStore({ server: { bind } }), bind).toThrow(RangeError);
      expect(() => createRedisStore({ server: { bind } }), bind).toThrow(/server\.bind must be/);
    }
    expect(() => createRedisStore({ startServer: { bind: 'example.com' } })).toThrow(/IP address of this machine/);
  });

  it('says which address it cannot listen on, and leaves no redis-server behind', async () => {
    const error = await caught(createRedisStore({ server: { bind: '198.18.254.254' } }).open({ sizeBytes: MiB }));
    expect(error.message).toContain('cannot listen on 198.18.254.254: is it an address of this machine?');
    const port = Number(/port (\d+):/.exec(error.message)?.[1]);
    expect(port).toBeGreaterThan(0);
    expect(await ping(port)).toBe(false);
    const left = spawnSync('pgrep', ['-f', `redis-server.*[ :]${port}( |$)`], { encoding: 'utf8' });
    if (left.error === undefined) expect(left.stdout.trim()).toBe('');
  });
});

function repoRoot(): string {
  return fileURLToPath(new URL('../../..', import.meta.url));
}

/** Runs `code` (an ES module body) in a new process of this runtime, from the repository's root. */
function evalCommand(code: string): [string, string[]] {
  const name = currentRuntimeName();
  if (name === 'deno') return [process.execPath, ['eval', code]];
  if (name === 'bun') return [process.execPath, ['-e', code]];
  return [process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code]];
}
