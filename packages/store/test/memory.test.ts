import { detectRuntime, ObjectNotFoundError, StoreFullError } from '@improv/core';
import { describeStoreConformance } from '@improv/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { Arena } from '../src/_arena.ts';
import { connectStore, createMemoryStore, type MemoryOpenStore, type MemoryStoreClient } from '../src/index.ts';

// The adapter of the runtime this file runs in: the suite runs on Node, Bun and Deno.
const runtime = await detectRuntime();
const MiB = 1024 * 1024;

describeStoreConformance({ name: 'memory', createDriver: createMemoryStore, runtime });

describe('memory store', () => {
  const opened: MemoryOpenStore[] = [];
  const open = async (sizeBytes: number, options: Parameters<typeof createMemoryStore>[0] = {}) => {
    const store = await createMemoryStore(options).open({ sizeBytes });
    opened.push(store);
    return store;
  };
  /** Consistency of the allocator: every block, free list and counter agrees. */
  const problems = (store: MemoryOpenStore) => new Arena(store.descriptor).check(store.client.ownerId, 1000);

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  it('describes itself and points the descriptor at the module exporting connectStore', async () => {
    const driver = createMemoryStore();
    expect(driver.name).toBe('memory');
    expect(driver.specificationVersion).toBe(1);
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
    await expect(connectStore({ module: 'x', driver: 'memory' })).rejects.toThrow(/not an open memory store/);
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
      Atomics.store(meta, slotWord, Atomics.load(meta, slotWord) + 4 - 2); // generation + 1, state FREE

      const blocked = await store.client.put(1).catch((caught: unknown) => caught);
      expect(String(blocked)).toContain(`recoverFromDeadOwner(${dead.ownerId})`);

      expect(store.recoverFromDeadOwner(dead.ownerId)).toEqual({ lockReleased: true, reservationsFreed: 0 });
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
        const worker = await runtime.spawnWorker({
          name: `dying-${round}`,
          entry: new URL('./fixtures/dying-worker.ts', import.meta.url).href,
        });
        let ownerId = 0;
        await new Promise<void>((resolve) => {
          worker.onMessage((message) => {
            const { type, ownerId: id } = message as { type: string; ownerId: number };
            if (type === 'owner') ownerId = id;
            else resolve();
          });
          worker.postMessage(store.descriptor);
        });
        // Terminated wherever it happens to be: inside the lock, between reserve and publish, or between calls.
        await worker.terminate();
        const report = store.recoverFromDeadOwner(ownerId);
        expect(report.reservationsFreed).toBeLessThanOrEqual(1);
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
      expect(store.recoverFromDeadOwner(dead.ownerId)).toEqual({ lockReleased: false, reservationsFreed: 1 });
      expect(await store.client.usage()).toEqual({ usedBytes: 0, capacityBytes: MiB, objects: 0 });
      expect(problems(store)).toEqual([]);
      expect(() => store.recoverFromDeadOwner(store.client.ownerId)).toThrow(RangeError);
    });
  });
});
