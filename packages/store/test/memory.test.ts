import {
  detectRuntime,
  ObjectNotFoundError,
  objectNotFound,
  StoreFullError,
  type StoreOpenOptions,
  type WorkerHandle,
} from '@improv/core';
import { describeStoreConformance } from '@improv/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { Arena, FREE, LIVE, RETIRED, STATE_BITS } from '../src/_arena.ts';
import { connectStore, createMemoryStore, type MemoryOpenStore, type MemoryStoreClient } from '../src/index.ts';
import { type MemoryWorkerCommand, type MemoryWorkerReport, unpackKey } from './fixtures/memory-worker.ts';

// The adapter of the runtime this file runs in: the suite runs on Node, Bun and Deno.
const runtime = await detectRuntime();
const MiB = 1024 * 1024;
const KiB = 1024;

/** Polls `condition` every 10 ms for up to 10 s (no timing assumption: only an upper bound). */
async function until(condition: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after 10 s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Waits without yielding to the event loop, so the store's expiry timer (on this thread) cannot run:
 * what happens meanwhile is the lazy expiry of reads, or a put's own reclaiming.
 */
function busyWait(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() <= end) Atomics.load(new Int32Array(1), 0);
}

/** The slot of a key (`<prefix><slot>.<generation>` in base 36). */
function slotOf(key: string): number {
  return Number.parseInt(key.slice(key.indexOf('-') + 1).split('.')[0]!, 36);
}

/** Message of a rejected promise (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error, 'expected a rejection').toBeInstanceOf(Error);
  return error as Error;
}

describeStoreConformance({ name: 'memory', createDriver: createMemoryStore, runtime });

describe('memory store', () => {
  const opened: MemoryOpenStore[] = [];
  const clients: MemoryStoreClient[] = [];
  const workers: WorkerHandle[] = [];
  const open = async (
    sizeBytes: number,
    options: Parameters<typeof createMemoryStore>[0] = {},
    openOptions: Omit<StoreOpenOptions, 'sizeBytes'> = {},
  ) => {
    const store = await createMemoryStore(options).open({ sizeBytes, ...openOptions });
    opened.push(store);
    return store;
  };
  /** Another client of `store`, as a worker would connect (closed after the test). */
  const connect = async (store: MemoryOpenStore) => {
    const client = (await connectStore(store.descriptor)) as MemoryStoreClient;
    clients.push(client);
    return client;
  };
  /** Consistency of the allocator: every block, free list, slot list and counter agrees. */
  const problems = (store: MemoryOpenStore) => new Arena(store.descriptor).check(store.client.ownerId, 1000);
  /** A worker running fixtures/memory-worker.ts; `ask` posts a command and resolves with its reply. */
  const spawn = async (name: string) => {
    const worker = await runtime.spawnWorker({
      name,
      entry: new URL('./fixtures/memory-worker.ts', import.meta.url).href,
    });
    workers.push(worker);
    const waiting: { resolve: (reply: unknown) => void; reject: (error: Error) => void }[] = [];
    worker.onMessage((message) => {
      const failed = message as { type?: string; message?: string };
      if (failed.type === 'failed') waiting.shift()?.reject(new Error(`${name} failed: ${failed.message}`));
      else waiting.shift()?.resolve(message);
    });
    worker.onError((error) => {
      for (const waiter of waiting.splice(0)) waiter.reject(error);
    });
    return <T = MemoryWorkerReport>(command: MemoryWorkerCommand) =>
      new Promise<T>((resolve, reject) => {
        waiting.push({ resolve: resolve as (reply: unknown) => void, reject });
        worker.postMessage(command);
      });
  };

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.terminate()));
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  it('describes itself and points the descriptor at the module exporting connectStore', async () => {
    const driver = createMemoryStore();
    expect(driver.name).toBe('memory');
    expect(driver.specificationVersion).toBe(1);
    expect(driver.reach).toBe('process');
    expect(driver.zeroCopy).toBe(true);
    const store = await open(MiB);
    const module = (await import(store.descriptor.module)) as { connectStore: unknown };
    expect(module.connectStore).toBe(connectStore);
    expect(store.descriptor.driver).toBe('memory');
    expect(store.descriptor.arena).toBeInstanceOf(SharedArrayBuffer);
    expect((await store.client.usage()).capacityBytes).toBe(MiB);
  });

  it('survives thousands of mixed-size put/delete cycles in a store a few times the live set, and merges free space back', async () => {
    const store = await open(4 * MiB);
    const client = store.client;
    // A deterministic pseudo-random sequence, so a failure reproduces.
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const live: string[] = [];
    let liveBytes = 0;
    const sizes = new Map<string, number>();
    for (let cycle = 0; cycle < 20_000; cycle++) {
      // Live set up to ~1 MiB of frames from 16 B to 64 KiB, in a 4 MiB store.
      if (liveBytes < MiB && (live.length === 0 || random() < 0.55)) {
        const bytes = 16 + Math.floor(random() ** 3 * 64 * 1024);
        const key = await client.put(new Uint8Array(bytes));
        live.push(key);
        sizes.set(key, bytes);
        liveBytes += bytes;
      } else {
        const index = Math.floor(random() * live.length);
        const key = live[index]!;
        live[index] = live[live.length - 1]!;
        live.pop();
        liveBytes -= sizes.get(key)!;
        expect(await client.delete(key)).toBe(true);
      }
      if (cycle % 5000 === 0) expect(problems(store)).toEqual([]);
    }
    expect(problems(store)).toEqual([]);
    for (const key of live) await client.delete(key);
    expect(await client.usage()).toEqual({ usedBytes: 0, capacityBytes: 4 * MiB, objects: 0 });
    expect(problems(store)).toEqual([]);
    // Everything merged back into one block: a value of nearly the whole store fits again.
    const whole = await client.put(new Uint8Array(4 * MiB - 64));
    expect((await client.info(whole)).byteLength).toBe(4 * MiB - 64);
  });

  it('fits a value into the only free block even when that block is barely big enough', async () => {
    // 9000 units of 8 bytes; the value needs 8500 of them. A size-class allocator that only looks
    // in classes that surely fit would report the store full here.
    const store = await open(9000 * 8);
    const bytes = (8500 - 5) * 8;
    const key = await store.client.put(new Uint8Array(bytes));
    expect((await store.client.info(key)).byteLength).toBe(bytes);
    expect(problems(store)).toEqual([]);
  });

  it('says when the free space is fragmented, with the largest free block', async () => {
    const store = await open(MiB);
    const keys: string[] = [];
    for (let index = 0; index < 16; index++) keys.push(await store.client.put(new Uint8Array(60 * 1024)));
    // Free every other block: ~480 KiB free in total, but no hole bigger than ~60 KiB.
    for (let index = 0; index < keys.length; index += 2) await store.client.delete(keys[index]!);
    const error = await store.client.put(new Uint8Array(200 * 1024)).catch((caught: unknown) => caught);
    expect(StoreFullError.isInstance(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain('200.00 KiB');
    expect(message).toMatch(/largest free block is 6\d\.\d\d KiB/);
    expect(message).toContain('fragmented');
    expect(message).toContain('settings.store_size');
  });

  it('reports a full key index separately from a full arena', async () => {
    const store = await open(MiB, { maxObjects: 3 });
    for (let index = 0; index < 3; index++) await store.client.put(index);
    const error = await store.client.put(3).catch((caught: unknown) => caught);
    expect(StoreFullError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('maximum of 3 values');
  });

  it('makes a reused slot’s old key stale (ABA-safe keys)', async () => {
    const store = await open(MiB, { maxObjects: 1 });
    const old = await store.client.put(new Float64Array([1]));
    await store.client.delete(old);
    // With one slot, the next value necessarily reuses it (and likely the same block).
    const next = await store.client.put(new Float64Array([2]));
    expect(next).not.toBe(old);
    await expect(store.client.get(old)).rejects.toThrow(ObjectNotFoundError);
    await expect(store.client.get(old)).rejects.toThrow(old);
    expect(await store.client.delete(old)).toBe(false);
    expect(Array.from(await store.client.get<Float64Array>(next))).toEqual([2]);
  });

  it('rejects keys of another store, and garbage keys, as not found', async () => {
    const first = await open(MiB);
    const second = await open(MiB);
    const key = await first.client.put('hello');
    const error = await second.client.get(key).catch((caught: unknown) => caught);
    expect(ObjectNotFoundError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('another store or an earlier run');
    const prefix = first.descriptor.keyPrefix;
    for (const bad of [
      `${prefix}`,
      `${prefix}.`,
      `${prefix}0.`,
      `${prefix}0.0x`,
      `${prefix}zzzzzzzzzz.0`,
      `${prefix}0.-1`,
    ]) {
      expect(await first.client.has(bad)).toBe(false);
      await expect(first.client.get(bad)).rejects.toThrow(ObjectNotFoundError);
    }
    await expect(first.client.get(42 as unknown as string)).rejects.toThrow(TypeError);
  });

  it('copies exactly the elements of a typed array that views part of a larger buffer', async () => {
    const store = await open(MiB);
    const bytes = Uint8Array.from({ length: 64 }, (_, index) => index);
    const doubles = Float64Array.from({ length: 16 }, (_, index) => index / 4);
    const byteKey = await store.client.put(bytes.subarray(3, 11));
    const doubleKey = await store.client.put(new Float64Array(doubles.buffer, 5 * 8, 3), { shape: [3, 1] });
    expect(Array.from(await store.client.get<Uint8Array>(byteKey))).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    const { array, shape } = await store.client.getArray<Float64Array>(doubleKey);
    expect(array).toBeInstanceOf(Float64Array);
    expect(Array.from(array)).toEqual([1.25, 1.5, 1.75]);
    expect(shape).toEqual([3, 1]);
  });

  it('keeps Map, Set, Date and ArrayBuffer inside msgpack values', async () => {
    const store = await open(MiB);
    const value = {
      map: new Map<unknown, unknown>([
        ['a', 1],
        [2, new Int16Array([-3])],
      ]),
      set: new Set(['x', 'y']),
      when: new Date(1_700_000_000_000),
      raw: new Uint8Array([9, 8, 7]).buffer,
    };
    expect(await store.client.get(await store.client.put(value))).toEqual(value);
  });

  it('keeps integers beyond 32 bits as numbers, and beyond 2**53 as bigints', async () => {
    const store = await open(MiB);
    const now = Date.now();
    const value = { t: now, big: 2 ** 40, neg: -(2 ** 40), safe: Number.MAX_SAFE_INTEGER };
    const back = (await store.client.get(await store.client.put(value))) as typeof value;
    expect(back).toEqual(value);
    expect(Date.now() - back.t).toBeGreaterThanOrEqual(0);
    const bigints = [2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), 5n];
    expect(await store.client.get(await store.client.put(bigints))).toEqual([
      2n ** 53n + 1n,
      2n ** 63n - 1n,
      -(2n ** 63n),
      5,
    ]);
  });

  it('validates settings.store_size and options with clear errors', async () => {
    await expect(createMemoryStore().open({ sizeBytes: 8 })).rejects.toThrow(/store_size.*at least 64/);
    await expect(createMemoryStore().open({ sizeBytes: Number.NaN })).rejects.toThrow(RangeError);
    // What validation accepts (sizeLimits) the driver opens; one byte more it refuses.
    const { minBytes, maxBytes } = createMemoryStore().sizeLimits;
    const smallest = await createMemoryStore().open({ sizeBytes: minBytes });
    await smallest.close();
    await expect(createMemoryStore().open({ sizeBytes: minBytes - 1 })).rejects.toThrow(RangeError);
    await expect(createMemoryStore().open({ sizeBytes: maxBytes + 8 })).rejects.toThrow(RangeError);
    await expect(createMemoryStore().open({ sizeBytes: 2 ** 40 })).rejects.toThrow(
      /over the limit of 17179869176 bytes \(16 GiB - 8 B\)/,
    );
    expect(() => createMemoryStore({ maxObjects: 0 })).toThrow(RangeError);
    expect(() => createMemoryStore({ lockTimeoutMs: -1 })).toThrow(RangeError);
    await expect(createMemoryStore().open({ sizeBytes: MiB, eviction: 'newest' as unknown as 'none' })).rejects.toThrow(
      /settings\.store_eviction must be "none" or "oldest", got "newest"/,
    );
    for (const leaseMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(createMemoryStore().open({ sizeBytes: MiB, leaseMs })).rejects.toThrow(/leaseMs must be a positive/);
    }
    await expect(connectStore({ module: 'x', driver: 'memory' })).rejects.toThrow(/not an open memory store/);
  });

  it('isIdle() says when flush() and release() have nothing to do: no value held', async () => {
    // With eviction on, a read holds the value until release().
    const store = await open(MiB, {}, { eviction: 'oldest' });
    const client = store.client as MemoryStoreClient;
    expect(client.isIdle()).toBe(true);
    const key = await client.put(new Uint8Array(8));
    expect(client.isIdle()).toBe(true);
    await client.get(key);
    expect(client.isIdle()).toBe(false);
    await client.release();
    expect(client.isIdle()).toBe(true);
    await client.allocate('uint8', 8);
    expect(client.isIdle()).toBe(false);
    await client.flush();
    expect(client.isIdle()).toBe(true);
  });

  it('holds an allocation only where TTL or eviction could free it: a step that allocates as it goes keeps nothing per value', async () => {
    const store = await open(MiB);
    const client = store.client as MemoryStoreClient;
    // No eviction, no TTL: only a delete frees the value, so there is nothing to hold until flush().
    for (let index = 0; index < 1000; index++) {
      const { key, array } = await client.allocate('uint8', 8);
      array[0] = index & 255;
      expect(client.isIdle()).toBe(true);
      expect(await client.delete(key)).toBe(true);
    }
    const { key, array } = await client.allocate('float32', [2, 2]);
    array.set([1, 2, 3, 4]);
    expect(await client.getArray(key)).toEqual({
      array: new Float32Array([1, 2, 3, 4]),
      dtype: 'float32',
      shape: [2, 2],
    });
    // With a TTL it is held until flush(): it cannot expire before the actor has sent it.
    await client.allocate('uint8', 8, { ttlMs: 60_000 });
    expect(client.isIdle()).toBe(false);
    await client.flush();
    expect(client.isIdle()).toBe(true);
    expect(problems(store)).toEqual([]);
  });

  it('rejects put() with a shape for a non-array and allocate() with bad shapes', async () => {
    const store = await open(MiB);
    await expect(store.client.put({ a: 1 }, { shape: [1] })).rejects.toThrow(TypeError);
    await expect(store.client.allocate('float32', [2, 1.5])).rejects.toThrow(RangeError);
    await expect(store.client.allocate('float32', new Array(33).fill(1))).rejects.toThrow(/33|over 32/);
    const scalar = await store.client.allocate('float64', []);
    expect(scalar.array.length).toBe(1);
    expect((await store.client.getArray(scalar.key)).shape).toEqual([]);
  });

  it('fails clearly after the store or the client is closed', async () => {
    const store = await createMemoryStore().open({ sizeBytes: MiB });
    const other = await connectStore(store.descriptor);
    const key = await other.put(1);
    await other.close();
    await expect(other.get(key)).rejects.toThrow(/client was closed/);
    await store.close();
    const late = await connectStore(store.descriptor);
    await expect(late.get(key)).rejects.toThrow(/store was closed/);
    await expect(store.client.put(1)).rejects.toThrow(/closed/);
  });

  it('holds more than 4 GiB: values past the 4 GiB mark are readable in place', async () => {
    let store: MemoryOpenStore;
    try {
      store = await open(5 * 1024 * MiB + 4096);
    } catch (error) {
      // Where the runtime or machine cannot reserve 5 GiB (Bun caps a SharedArrayBuffer lower), the
      // store must say so clearly; the rest of this test needs the big arena.
      expect(String(error)).toMatch(/store_size/);
      return;
    }
    const client = store.client;
    // allocate() does not touch its pages, so this reserves 4 GiB without using the memory.
    const big = await client.allocate('float64', 2 ** 29);
    const far = await client.allocate('float32', [2, 3]);
    far.array.set([1, 2, 3, 4, 5, 6]);
    const farInfo = await client.getArray<Float32Array>(far.key);
    expect(far.array.byteOffset).toBeGreaterThan(2 ** 32);
    expect(Array.from(farInfo.array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(farInfo.shape).toEqual([2, 3]);
    const value = await client.put({ beyond: '4 GiB' });
    expect(await client.get(value)).toEqual({ beyond: '4 GiB' });
    expect((await client.info(big.key)).byteLength).toBe(2 ** 32);
    expect((await client.usage()).usedBytes).toBeGreaterThan(2 ** 32);
    await client.delete(big.key);
    await client.delete(far.key);
    await client.delete(value);
    expect((await client.usage()).usedBytes).toBe(0);
    expect(problems(store)).toEqual([]);
  });

  describe('a client that dies inside the store', () => {
    it('recovers the lock and the allocator when the dead client held the lock mid-update', async () => {
      const store = await open(MiB, { lockTimeoutMs: 200 });
      const dead = (await connectStore(store.descriptor)) as MemoryStoreClient;
      const kept = await dead.put(new Int32Array([1, 2, 3]));
      const gone = await dead.put(new Int32Array(1000));
      const arena = new Arena(store.descriptor);
      // Simulate death half-way through delete(gone): lock held, slot freed, free lists untouched.
      arena.lock(dead.ownerId, 100);
      const meta = arena.meta;
      const slotWord = arena.slotBase(Number.parseInt(gone.split('-')[1]!.split('.')[0]!, 36));
      const word = Atomics.load(meta, slotWord);
      Atomics.store(meta, slotWord, (((word >>> STATE_BITS) + 1) << STATE_BITS) | FREE); // generation + 1, state FREE

      const blocked = await store.client.put(1).catch((caught: unknown) => caught);
      expect(String(blocked)).toContain(`recoverFromDeadOwner(${dead.ownerId})`);

      expect(store.recoverFromDeadOwner(dead.ownerId)).toEqual({
        lockReleased: true,
        reservationsFreed: 0,
        deletesFinished: 0,
      });
      expect(problems(store)).toEqual([]);
      expect(Array.from(await store.client.get<Int32Array>(kept))).toEqual([1, 2, 3]);
      await expect(store.client.get(gone)).rejects.toThrow(ObjectNotFoundError);
      expect((await store.client.usage()).objects).toBe(1);
      await store.client.delete(kept);
      expect(await store.client.usage()).toEqual({ usedBytes: 0, capacityBytes: MiB, objects: 0 });
    });

    it('recovers after a worker is terminated in the middle of putting and deleting', async () => {
      const store = await open(4 * MiB);
      for (let round = 0; round < 3; round++) {
        // The 'die' loop yields to the event loop now and then: Deno cannot end a worker that never does.
        const worker = await runtime.spawnWorker({
          name: `dying-${round}`,
          entry: new URL('./fixtures/memory-worker.ts', import.meta.url).href,
        });
        let ownerId = 0;
        await new Promise<void>((resolve) => {
          worker.onMessage((message) => {
            const { type, ownerId: id } = message as { type: string; ownerId: number };
            if (type === 'owner') ownerId = id;
            else resolve();
          });
          worker.postMessage({ type: 'die', descriptor: store.descriptor } satisfies MemoryWorkerCommand);
        });
        // Terminated wherever it happens to be: inside the lock, between reserve and publish, or between calls.
        await worker.terminate();
        const report = store.recoverFromDeadOwner(ownerId);
        expect(report.reservationsFreed).toBeLessThanOrEqual(1);
        expect(report.deletesFinished).toBeLessThanOrEqual(1);
        expect(problems(store)).toEqual([]);
        const key = await store.client.put(new Float32Array([round]));
        expect(Array.from(await store.client.get<Float32Array>(key))).toEqual([round]);
        await store.client.delete(key);
      }
      // The dead workers' last values stay until deleted (up to 17 each); nothing else leaked.
      expect((await store.client.usage()).objects).toBeLessThanOrEqual(3 * 17);
    });

    it('frees reservations a dead client never published', async () => {
      const store = await open(MiB);
      const dead = (await connectStore(store.descriptor)) as MemoryStoreClient;
      const arena = new Arena(store.descriptor);
      // Simulate death between reserving a block and publishing the value.
      arena.reserve(dead.ownerId, 100, 100, () => {
        throw new Error('unexpected full store');
      });
      expect((await store.client.usage()).objects).toBe(1);
      expect(store.recoverFromDeadOwner(dead.ownerId)).toEqual({
        lockReleased: false,
        reservationsFreed: 1,
        deletesFinished: 0,
      });
      expect(await store.client.usage()).toEqual({ usedBytes: 0, capacityBytes: MiB, objects: 0 });
      expect(problems(store)).toEqual([]);
      expect(() => store.recoverFromDeadOwner(store.client.ownerId)).toThrow(RangeError);
    });

    it('finishes a delete its worker died in, between marking the value deleted and queueing it', async () => {
      for (const holdingLock of [false, true]) {
        const store = await open(MiB);
        const dead = await connect(store);
        const kept = await dead.put(new Int32Array([1, 2, 3]));
        const gone = await dead.put(new Int32Array(1000));
        const arena = new Arena(store.descriptor);
        const state = arena.slotBase(slotOf(gone));
        expect(Atomics.load(arena.meta, state) & 7).toBe(LIVE);
        // Death right after delete()'s compare-and-swap, before its push on the retired stack.
        Atomics.store(arena.meta, state, Arena.retiredWord(dead.ownerId));
        if (holdingLock) arena.lock(dead.ownerId, 100);
        expect(await store.client.has(gone)).toBe(false);
        expect(store.recoverFromDeadOwner(dead.ownerId)).toEqual({
          lockReleased: holdingLock,
          reservationsFreed: 0,
          deletesFinished: 1,
        });
        expect(Atomics.load(arena.meta, state) & 7).not.toBe(RETIRED);
        expect(problems(store)).toEqual([]);
        expect(Array.from(await store.client.get<Int32Array>(kept))).toEqual([1, 2, 3]);
        expect((await store.client.usage()).objects).toBe(1);
        // Finished once: a second recovery finds nothing more.
        expect(store.recoverFromDeadOwner(dead.ownerId).deletesFinished).toBe(0);
      }
    });
  });

  describe('small puts: blocks and slots reserved ahead per client', () => {
    it('counts only values in usage(), and gives the rest back when the client closes', async () => {
      const store = await open(MiB);
      const client = await connect(store);
      const key = await client.put(new Uint8Array(8));
      expect(problems(store)).toEqual([]);
      expect((await store.client.usage()).objects).toBe(1);
      await client.delete(key);
      expect(await store.client.usage()).toEqual({ usedBytes: 0, capacityBytes: MiB, objects: 0 });
      await client.put(new Float64Array([1, 2]));
      await client.close();
      expect(problems(store)).toEqual([]);
      expect((await store.client.usage()).objects).toBe(1);
    });

    it('takes back what other clients reserved ahead before the store is full', async () => {
      const store = await open(MiB, { maxObjects: 256 });
      const other = await connect(store);
      const first = await other.put(new Uint8Array([7]));
      const keys: string[] = [];
      const full = await rejection(
        (async () => {
          for (;;) keys.push(await store.client.put(new Uint8Array(8)));
        })(),
      );
      expect(full).toBeInstanceOf(StoreFullError);
      // Every slot but the other client's value went to this client.
      expect(keys.length).toBe(255);
      expect(problems(store)).toEqual([]);
      for (const key of keys) await store.client.delete(key);
      // The other client's cache was taken back: its next puts reserve afresh.
      const again = await other.put(new Uint8Array([9]));
      expect(Array.from(await store.client.get<Uint8Array>(again))).toEqual([9]);
      expect(Array.from(await store.client.get<Uint8Array>(first))).toEqual([7]);
      expect(problems(store)).toEqual([]);
    });

    it('frees what a dead client reserved ahead, without counting it as a reservation', async () => {
      for (const holdingLock of [false, true]) {
        const store = await open(MiB);
        const dead = await connect(store);
        const kept = await dead.put(new Int16Array([1, 2, 3]));
        if (holdingLock) new Arena(store.descriptor).lock(dead.ownerId, 100);
        expect(store.recoverFromDeadOwner(dead.ownerId)).toEqual({
          lockReleased: holdingLock,
          reservationsFreed: 0,
          deletesFinished: 0,
        });
        expect(problems(store)).toEqual([]);
        expect(Array.from(await store.client.get<Int16Array>(kept))).toEqual([1, 2, 3]);
        expect((await store.client.usage()).objects).toBe(1);
        await store.client.delete(kept);
        expect(await store.client.usage()).toEqual({ usedBytes: 0, capacityBytes: MiB, objects: 0 });
      }
    });
  });

  describe('lock-free delete: the retired stack', () => {
    it('frees deleted values at the next put, at usage() or on the timer, exactly once', async () => {
      const store = await open(MiB);
      const arena = new Arena(store.descriptor);
      const client = store.client;
      const keys: string[] = [];
      for (let index = 0; index < 10; index++) keys.push(await client.put(new Uint8Array(60 * KiB)));
      for (const key of keys) expect(await client.delete(key)).toBe(true);
      for (const key of keys) expect(await client.delete(key)).toBe(false);
      // Deleted, not yet freed: the checker counts the retired blocks as used and queued.
      expect(arena.retiredCount()).toBe(10);
      expect(problems(store)).toEqual([]);
      // A put that needs their space frees them first.
      const whole = await client.put(new Uint8Array(MiB - 64));
      expect(arena.retiredCount()).toBe(0);
      expect(problems(store)).toEqual([]);
      await client.delete(whole);
      // usage() counts a delete that has returned.
      expect(arena.retiredCount()).toBe(1);
      expect(await client.usage()).toEqual({ usedBytes: 0, capacityBytes: MiB, objects: 0 });
      expect(arena.retiredCount()).toBe(0);
      // With no put and no usage() call, the store's timer frees them.
      const more: string[] = [];
      for (let index = 0; index < 5; index++) more.push(await client.put({ index }));
      for (const key of more) await client.delete(key);
      expect(arena.retiredCount()).toBe(5);
      await until(() => arena.retiredCount() === 0, 'the timer to free retired blocks');
      expect(problems(store)).toEqual([]);
    });

    it('keeps the allocator consistent while workers delete each other’s values as they reserve', async () => {
      const store = await open(4 * MiB);
      const board = new BigInt64Array(new SharedArrayBuffer(64 * 8));
      const asks = await Promise.all([0, 1, 2].map((index) => spawn(`churn-${index}`)));
      await Promise.all(asks.map((ask) => ask({ type: 'connect', descriptor: store.descriptor })));
      const reports = await Promise.all(
        asks.map((ask, index) => ask({ type: 'churn', board, cycles: 1500, seed: index + 1 })),
      );
      expect(reports.flatMap((report) => report.problems)).toEqual([]);
      const puts = reports.reduce((sum, report) => sum + (report.counts.puts ?? 0), 0);
      const deletes = reports.reduce((sum, report) => sum + (report.counts.deletes ?? 0), 0);
      const left = Array.from(board).filter((packed) => packed !== 0n);
      expect(puts).toBe(3 * 1500);
      expect(deletes + left.length).toBe(puts);
      expect(problems(store)).toEqual([]);
      expect((await store.client.usage()).objects).toBe(left.length);
      for (const packed of left)
        expect(await store.client.delete(unpackKey(store.descriptor.keyPrefix, packed))).toBe(true);
      expect(await store.client.usage()).toEqual({ usedBytes: 0, capacityBytes: 4 * MiB, objects: 0 });
      expect(problems(store)).toEqual([]);

      // The same keys deleted by two workers at once: each value is freed exactly once.
      const keys: string[] = [];
      for (let index = 0; index < 3000; index++) keys.push(await store.client.put(new Uint8Array(8 + (index % 64))));
      const [first, second] = await Promise.all([
        asks[0]!({ type: 'deleteAll', keys }),
        asks[1]!({ type: 'deleteAll', keys }),
      ]);
      expect((first!.counts.deleted ?? 0) + (second!.counts.deleted ?? 0)).toBe(keys.length);
      expect(problems(store)).toEqual([]);
      expect(await store.client.usage()).toEqual({ usedBytes: 0, capacityBytes: 4 * MiB, objects: 0 });
    });
  });

  describe('ttlMs', () => {
    it('reads an expired value as expired before it is reaped, then the timer reaps it', async () => {
      const store = await open(MiB, { maxObjects: 4 });
      const client = store.client;
      const key = await client.put(new Float64Array(100), { ttlMs: 30 });
      const { key: allocated } = await client.allocate('int16', [2, 2], { ttlMs: 30 });
      await client.flush();
      busyWait(40); // the timer, on this thread, cannot run
      for (const gone of [key, allocated]) {
        expect(await client.has(gone)).toBe(false);
        expect((await rejection(client.get(gone))).message).toBe(objectNotFound('memory', gone, 'expired').message);
        await expect(client.info(gone)).rejects.toThrow(/expired/);
      }
      expect((await client.usage()).objects).toBe(2); // not reaped yet
      await until(async () => (await client.usage()).objects === 0, 'the timer to reap the expired values');
      expect(problems(store)).toEqual([]);
      expect((await rejection(client.get(key))).message).toBe(objectNotFound('memory', key, 'expired').message);
      // Once its slot holds a newer value, the store no longer knows: the plain message.
      for (let index = 0; index < 4; index++) await client.put(index);
      expect((await rejection(client.get(key))).message).toBe(objectNotFound('memory', key, 'unknown').message);
    });

    it('frees expired values itself when a put finds the store full', async () => {
      const store = await open(MiB);
      const client = store.client;
      const keys: string[] = [];
      for (let index = 0; index < 15; index++) keys.push(await client.put(new Uint8Array(64 * KiB), { ttlMs: 30 }));
      await expect(client.put(new Uint8Array(64 * KiB))).rejects.toThrow(StoreFullError);
      busyWait(40);
      const fresh = await client.put(new Uint8Array(512 * KiB));
      expect(await client.has(fresh)).toBe(true);
      expect((await rejection(client.get(keys[0]!))).message).toMatch(/expired/);
      expect(problems(store)).toEqual([]);
    });

    it('keeps an expired value while it is held, until release() or the lease lapses', async () => {
      const store = await open(MiB, {}, { leaseMs: 150 });
      const reader = await connect(store);
      const released = await store.client.put({ frame: 1 }, { ttlMs: 30 });
      const lapsed = await store.client.put({ frame: 2 }, { ttlMs: 30 });
      expect(await reader.get(released)).toEqual({ frame: 1 });
      expect(await reader.get(lapsed)).toEqual({ frame: 2 });
      busyWait(40);
      // Held: not expired, for any client, and the timer leaves them.
      expect(await store.client.has(released)).toBe(true);
      expect(await store.client.get(lapsed)).toEqual({ frame: 2 });
      await store.client.release(lapsed); // ends only the main client's own hold
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect((await store.client.usage()).objects).toBe(2);
      await reader.release(released);
      expect(await store.client.has(released)).toBe(false);
      await until(async () => !(await store.client.has(lapsed)), 'the hold on the other value to lapse');
      await until(async () => (await store.client.usage()).objects === 0, 'both values to be reaped');
      expect((await rejection(reader.get(lapsed))).message).toMatch(/expired/);
    });

    it('refuses a ttlMs that is not a positive, finite number of milliseconds', async () => {
      const store = await open(MiB);
      for (const ttlMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '10' as unknown as number]) {
        await expect(store.client.put(1, { ttlMs })).rejects.toThrow(
          /put\(\): ttlMs must be a positive, finite number/,
        );
        await expect(store.client.allocate('uint8', 4, { ttlMs })).rejects.toThrow(/allocate\(\): ttlMs must be/);
      }
      expect((await store.client.usage()).objects).toBe(0);
    });
  });

  describe('store_eviction: oldest', () => {
    const frame = () => new Uint8Array(64 * KiB);
    /** A 1 MiB store (15 frames) with eviction, filled with `count` frames in put order. */
    const filled = async (count: number, openOptions: Omit<StoreOpenOptions, 'sizeBytes'> = {}) => {
      const store = await open(MiB, {}, { eviction: 'oldest', ...openOptions });
      const reader = await connect(store);
      const keys: string[] = [];
      for (let index = 0; index < count; index++) keys.push(await store.client.put(frame()));
      return { store, client: store.client, reader, keys };
    };
    const readAll = async (reader: MemoryStoreClient, keys: string[]) => {
      for (const key of keys) await reader.get(key);
      await reader.release();
    };

    it('frees the oldest values that were read and are not held, from above 95 % to below 85 %', async () => {
      const { store, client, reader, keys } = await filled(14);
      await readAll(reader, keys.slice(0, 10));
      await reader.get(keys[0]!); // held
      await client.track([keys[1]!], 1); // in a link
      // 15 frames fit (93.8 %); the 16th would take the store past 95 %: down to 12 frames first.
      const newer = [await client.put(frame()), await client.put(frame())];
      const present = await Promise.all(keys.map((key) => client.has(key)));
      expect(present).toEqual([true, true, false, false, false, ...new Array(9).fill(true)]);
      expect((await rejection(client.get(keys[2]!))).message).toBe(
        objectNotFound('memory', keys[2]!, 'evicted').message,
      );
      for (const key of newer) expect(await client.has(key)).toBe(true);
      const usage = await client.usage();
      expect(usage.objects).toBe(13);
      expect(problems(store)).toEqual([]);
    });

    it('never evicts a value nobody has read, and says so when the store is full', async () => {
      const { store, client, reader, keys } = await filled(15);
      await readAll(reader, keys.slice(10));
      for (const key of keys.slice(10)) await reader.get(key); // read, and held again
      await client.track([keys[14]!], 1);
      const error = await rejection(client.put(frame()));
      expect(StoreFullError.isInstance(error)).toBe(true);
      expect(error.message).toContain('5 values are held');
      expect(error.message).toContain('10 values have not been read yet');
      expect(error.message).toContain('settings.store_eviction: oldest');
      expect(await Promise.all(keys.map((key) => client.has(key)))).toEqual(new Array(15).fill(true));
      // Released, and out of the link: the held ones go, oldest first; the unread ones stay.
      await reader.release();
      await client.track([keys[14]!], -1);
      await client.put(frame());
      expect(await Promise.all(keys.map((key) => client.has(key)))).toEqual([
        ...new Array(10).fill(true),
        false,
        false,
        false,
        true,
        true,
      ]);
      expect(problems(store)).toEqual([]);
    });

    it('lets a hold lapse after leaseMs, and treats a count of messages in flight ≤ 0 as none', async () => {
      const { store, client, reader, keys } = await filled(15, { leaseMs: 100 });
      await readAll(reader, keys);
      for (const key of keys.slice(0, 12)) await reader.get(key); // held, never released
      await client.track([keys[12]!], 1);
      await client.track([keys[12]!], -2); // taken twice: -1 counts as none
      await client.track([keys[13]!], 2);
      await client.track([keys[13]!], -1); // one copy still in a link
      await client.track(['another-store-key', keys[13]!.replace('-', '+')], 5); // not keys of this store: ignored
      await client.put(frame());
      expect(await client.has(keys[12]!)).toBe(false);
      expect(await client.has(keys[13]!)).toBe(true);
      expect(await client.has(keys[14]!)).toBe(false);
      expect(await client.has(keys[0]!)).toBe(true);
      await expect(client.track([keys[0]!], 1.5)).rejects.toThrow(RangeError);
      // Once the lease lapses the held values are fair game, oldest first.
      await new Promise((resolve) => setTimeout(resolve, 120));
      await client.put(frame());
      await client.put(frame());
      expect(await client.has(keys[0]!)).toBe(false);
      expect(problems(store)).toEqual([]);
    });

    it('holds an allocation until flush(), even once read and released by others', async () => {
      const { store, client, reader, keys } = await filled(13);
      await readAll(reader, keys);
      const allocation = await client.allocate('uint8', 64 * KiB);
      allocation.array.fill(9);
      await readAll(reader, [allocation.key]);
      // Oldest of all once the frames go: still held by the allocating client.
      for (const key of keys) await client.delete(key);
      for (let index = 0; index < 14; index++) {
        await readAll(reader, [await client.put(frame())]);
      }
      expect((await client.getArray<Uint8Array>(allocation.key)).array[0]).toBe(9);
      await client.flush();
      await client.release();
      for (let index = 0; index < 3; index++) await client.put(frame());
      expect(await client.has(allocation.key)).toBe(false);
      expect(problems(store)).toEqual([]);
    });

    it('frees a value for its slot when the key index is full, and then no longer knows the key', async () => {
      const store = await open(MiB, { maxObjects: 2 }, { eviction: 'oldest' });
      const reader = await connect(store);
      const first = await store.client.put({ n: 1 });
      const second = await store.client.put({ n: 2 });
      await expect(store.client.put({ n: 3 })).rejects.toThrow(
        /maximum of 2 values[\s\S]*2 values have not been read yet/,
      );
      await readAll(reader, [first, second]);
      const third = await store.client.put({ n: 3 });
      expect(await store.client.has(first)).toBe(false);
      expect(await store.client.get(third)).toEqual({ n: 3 });
      // The slot of the evicted value holds the new one: the plain message.
      expect((await rejection(store.client.get(first))).message).toBe(
        objectNotFound('memory', first, 'unknown').message,
      );
      expect(problems(store)).toEqual([]);
    });

    it('never frees a value a reader in another worker holds, while a producer worker evicts around it', async () => {
      const store = await open(MiB, {}, { eviction: 'oldest' });
      const board = new BigInt64Array(new SharedArrayBuffer(64 * 8));
      const stop = new Int32Array(new SharedArrayBuffer(4));
      const [producer, holder] = await Promise.all([spawn('producer'), spawn('holder')]);
      await Promise.all([producer, holder].map((ask) => ask({ type: 'connect', descriptor: store.descriptor })));
      const [produced, held] = await Promise.all([
        producer({ type: 'produce', board, stop, count: 2000, length: 2048 }),
        holder({ type: 'hold', board, stop }),
      ]);
      expect(produced!.problems).toEqual([]);
      expect(held!.problems).toEqual([]);
      expect(held!.counts.held).toBeGreaterThan(0);
      // 2000 values of 8 KiB went through a 1 MiB store.
      expect((await store.client.usage()).objects).toBeLessThan(130);
      expect(problems(store)).toEqual([]);
    });
  });
});
