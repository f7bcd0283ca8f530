/**
 * Conformance suite of the store contract ({@link StoreDriver}/{@link StoreClient}): every driver's
 * test file calls it, on every runtime. It checks what a user relies on — values come back as
 * stored (every typed-array kind with its shape, msgpack values with nested typed arrays), keys go
 * stale for good once deleted, a full store says so with sizes, and many workers putting, reading
 * and deleting at once never see each other's data.
 *
 * @example
 * ```ts
 * import { describeStoreConformance } from '@improv/core/testing';
 * import { createNodeRuntime } from '@improv/core/runtime/node';
 * import { createMemoryStore } from '@improv/store';
 *
 * describeStoreConformance({ name: 'memory', createDriver: createMemoryStore, runtime: createNodeRuntime() });
 * ```
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { siblingModule } from '../_module-url.ts';
import { ObjectNotFoundError, StoreFullError } from '../errors.ts';
import type { RuntimeAdapter, WorkerHandle } from '../runtime/adapter.ts';
import type {
  ConnectStore,
  OpenStore,
  StoreClient,
  StoreDriver,
  StoreKey,
  TypedArray,
  TypedArrayKind,
} from '../store/driver.ts';
import { releaseKeys, storeKeysIn } from '../store/keys.ts';
import { checkValue, type HammerCommand, type HammerReport, type SharedKey } from './_store-worker.ts';

/** What the suite needs. */
export interface StoreConformanceOptions {
  /** Shown in the test names. */
  name: string;
  /** A new driver; each test opens its own store. */
  createDriver: () => StoreDriver;
  /** Starts the hammer test's workers. */
  runtime: RuntimeAdapter;
  /**
   * Starts the hammer protocol of the worker test in a separate OS process of this runtime, for
   * drivers whose `reach` is `host` or `network`: the handle speaks the same messages as a worker.
   * Absent (or a `process` driver): the several-processes test is skipped.
   */
  spawnProcess?: (name: string) => Promise<WorkerHandle>;
}

const MiB = 1024 * 1024;

/** TypeScript's own kinds (`bool`, numpy's, is only made by `allocate`: see its test). */
const KIND_CONSTRUCTORS: Record<Exclude<TypedArrayKind, 'bool'>, new (length: number) => TypedArray> = {
  int8: Int8Array,
  uint8: Uint8Array,
  uint8clamped: Uint8ClampedArray,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  float32: Float32Array,
  float64: Float64Array,
  bigint64: BigInt64Array,
  biguint64: BigUint64Array,
};

/** Six distinct values of `kind`, negative ones where the kind has them. */
function sampleArray(kind: keyof typeof KIND_CONSTRUCTORS): TypedArray {
  const array = new KIND_CONSTRUCTORS[kind](6);
  for (let index = 0; index < 6; index++) {
    if (array instanceof BigInt64Array) array[index] = BigInt(index * 1_000_000_007) - 3n;
    else if (array instanceof BigUint64Array) array[index] = 2n ** 63n + BigInt(index);
    else if (array instanceof Float32Array || array instanceof Float64Array) array[index] = index * 1.25 - 2;
    else (array as Int32Array)[index] = kind.startsWith('u') ? index * 41 : index * 37 - 100;
  }
  return array;
}

async function expectNotFound(promise: Promise<unknown>, key: StoreKey): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(ObjectNotFoundError.isInstance(error), `expected ObjectNotFoundError, got ${String(error)}`).toBe(true);
  expect((error as Error).message).toContain(key);
}

async function connect(open: OpenStore): Promise<StoreClient> {
  const module = (await import(open.descriptor.module)) as { connectStore: ConnectStore };
  return module.connectStore(open.descriptor);
}

/** Registers the suite with vitest. */
export function describeStoreConformance(options: StoreConformanceOptions): void {
  const { zeroCopy, reach } = options.createDriver();
  const spawnProcess = reach === 'process' ? undefined : options.spawnProcess;

  describe(`store driver "${options.name}" (conformance)`, () => {
    let open: OpenStore;
    let store: StoreClient;
    const extraClients: StoreClient[] = [];

    beforeEach(async () => {
      open = await options.createDriver().open({ sizeBytes: 16 * MiB });
      store = open.client;
    });

    afterEach(async () => {
      await Promise.all(extraClients.splice(0).map((client) => client.close()));
      await open.close();
    });

    it('round-trips every typed-array kind with its dtype and shape', async () => {
      for (const kind of Object.keys(KIND_CONSTRUCTORS) as (keyof typeof KIND_CONSTRUCTORS)[]) {
        const original = sampleArray(kind);
        const shaped = await store.put(original, { shape: [2, 3] });
        const flat = await store.put(original);

        const value = await store.get<TypedArray>(shaped);
        expect(value.constructor, kind).toBe(original.constructor);
        expect(Array.from(value as ArrayLike<unknown>), kind).toEqual(Array.from(original as ArrayLike<unknown>));
        const { array, dtype, shape } = await store.getArray(shaped);
        expect(array.constructor).toBe(original.constructor);
        expect(dtype).toBe(kind);
        expect(shape).toEqual([2, 3]);
        expect(await store.info(shaped)).toEqual({
          key: shaped,
          kind: 'array',
          dtype: kind,
          shape: [2, 3],
          byteLength: original.byteLength,
        });
        expect((await store.getArray(flat)).shape).toEqual([6]);
      }
    });

    it('stores a copy: changing the original after put() does not change the stored value', async () => {
      const original = new Float64Array([1, 2, 3]);
      const key = await store.put(original);
      original[0] = 99;
      expect(Array.from(await store.get<Float64Array>(key))).toEqual([1, 2, 3]);
    });

    it('rejects a shape whose product is not the length, naming both', async () => {
      const error = await store.put(new Float32Array(6), { shape: [5, 7] }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RangeError);
      expect((error as Error).message).toMatch(/5\D+7/);
      expect((error as Error).message).toMatch(/\b6\b/);
    });

    it('round-trips msgpack values: objects, strings, numbers, bigints, null and nested typed arrays', async () => {
      const value = {
        text: 'grüße, 世界',
        numbers: [0, -1, 255, 65_536, 2 ** 40, -(2 ** 40), 1.5, Number.MAX_SAFE_INTEGER],
        big: -(2n ** 62n),
        flag: true,
        none: null,
        deep: { list: [{ a: 1 }, 'two', [3]] },
        frame: new Float32Array([0.5, -1, 3]),
        bytes: new Uint8Array([1, 2, 255]),
        wide: new BigUint64Array([2n ** 64n - 1n]),
      };
      const key = await store.put(value);
      const back = (await store.get(key)) as typeof value;
      expect(back).toEqual(value);
      expect(back.frame).toBeInstanceOf(Float32Array);
      expect(back.bytes).toBeInstanceOf(Uint8Array);
      expect(back.wide).toBeInstanceOf(BigUint64Array);
      expect(await store.info(key)).toMatchObject({ key, kind: 'value' });
      for (const plain of ['a string', 42, -7.25, null, true, [1, 'x', null]]) {
        expect(await store.get(await store.put(plain))).toEqual(plain);
      }
    });

    it('keeps zero-length arrays and empty values', async () => {
      const emptyArray = await store.put(new Float64Array(0));
      const fromEmpty = await store.get<Float64Array>(emptyArray);
      expect(fromEmpty).toBeInstanceOf(Float64Array);
      expect(fromEmpty.length).toBe(0);
      expect((await store.getArray(emptyArray)).shape).toEqual([0]);
      const shapedEmpty = await store.put(new Int16Array(0), { shape: [0, 4] });
      expect((await store.getArray(shapedEmpty)).shape).toEqual([0, 4]);
      for (const empty of ['', {}, [], 0, false]) expect(await store.get(await store.put(empty))).toEqual(empty);
    });

    it('refuses values that cannot be encoded with a TypeError', async () => {
      await expect(store.put(() => 1)).rejects.toThrow(TypeError);
      await expect(store.put(Symbol('s'))).rejects.toThrow(TypeError);
      await expect(store.put({ nested: { callback: () => 1 } })).rejects.toThrow(TypeError);
      await expect(store.getArray(await store.put({ not: 'an array' }))).rejects.toThrow(TypeError);
    });

    it('refuses values that would come back changed or not at all, saying what to store instead; keeps -0', async () => {
      const refused: [unknown, string][] = [
        [new Date(Number.NaN), 'invalid Date'],
        [{ at: new Error('boom') }, 'error.message'],
        [/a+/g, 're.source'],
        [JSON.parse('{"__proto__": {"gain": 2}, "id": 1}'), '"__proto__" key'],
        [['ok', 'half \ud83d'], 'lone surrogate'],
        [2n ** 64n, 'String(value)'],
        [JSON.parse(`${'['.repeat(120)}${']'.repeat(120)}`), 'deeper than 100 levels'],
      ];
      const before = (await store.usage()).objects;
      for (const [value, fix] of refused) {
        const error = await store.put(value).then(
          () => undefined,
          (reason: unknown) => reason,
        );
        expect(error).toBeInstanceOf(TypeError);
        expect((error as Error).message).toContain(fix);
      }
      expect((await store.usage()).objects).toBe(before);
      expect(Object.is(await store.get(await store.put(-0)), -0)).toBe(true);
      expect(Object.is((await store.get<{ v: number[] }>(await store.put({ v: [1, -0] }))).v[1], -0)).toBe(true);
    });

    it('answers has/delete/info/usage', async () => {
      const before = await store.usage();
      expect(before.capacityBytes).toBeGreaterThan(0);
      const array = new Uint32Array(1000);
      const first = await store.put(array);
      const second = await store.put({ hello: 'world' });
      const during = await store.usage();
      expect(during.objects).toBe(before.objects + 2);
      expect(during.usedBytes).toBeGreaterThanOrEqual(before.usedBytes + array.byteLength);
      expect(during.capacityBytes).toBe(before.capacityBytes);
      expect(await store.has(first)).toBe(true);
      expect((await store.info(first)).byteLength).toBe(4000);
      expect(await store.delete(first)).toBe(true);
      expect(await store.delete(first)).toBe(false);
      expect(await store.has(first)).toBe(false);
      expect(await store.has(second)).toBe(true);
      expect(await store.delete(second)).toBe(true);
      expect(await store.usage()).toEqual(before);
    });

    it('throws ObjectNotFoundError naming the key for an unknown or deleted key', async () => {
      for (const unknown of ['no-such-key', '', 'x'.repeat(40)]) {
        await expectNotFound(store.get(unknown), unknown);
        await expectNotFound(store.getArray(unknown), unknown);
        await expectNotFound(store.info(unknown), unknown);
        expect(await store.has(unknown)).toBe(false);
        expect(await store.delete(unknown)).toBe(false);
      }
      const key = await store.put(new Int8Array([1, 2]));
      await store.delete(key);
      await expectNotFound(store.get(key), key);
      await expectNotFound(store.getArray(key), key);
      await expectNotFound(store.info(key), key);
    });

    it('never lets an old key read a newer value after its space is reused', async () => {
      const old = await store.put(new Float32Array([1, 2, 3]));
      await store.delete(old);
      const live: StoreKey[] = [];
      for (let round = 0; round < 2000; round++) {
        const key = await store.put(new Float32Array([round, round, round]));
        expect(key).not.toBe(old);
        if (round % 100 === 0) live.push(key);
        else await store.delete(key);
      }
      await expectNotFound(store.get(old), old);
      await expectNotFound(store.info(old), old);
      expect(await store.has(old)).toBe(false);
      expect(await store.delete(old)).toBe(false);
      for (const key of live) expect(await store.has(key)).toBe(true);
    });

    it('throws StoreFullError with the sizes and the fix when a value does not fit, and recovers after delete', async () => {
      const small = await options.createDriver().open({ sizeBytes: MiB });
      try {
        const error = await small.client.put(new Float64Array(MiB / 4)).catch((caught: unknown) => caught);
        expect(StoreFullError.isInstance(error), `expected StoreFullError, got ${String(error)}`).toBe(true);
        const message = (error as Error).message;
        expect(message).toMatch(/2(\.0+)? ?MiB|2097152/);
        expect(message).toMatch(/store_size/);

        const keys: StoreKey[] = [];
        let full: unknown;
        for (let index = 0; index < 100 && full === undefined; index++) {
          await small.client.put(new Uint8Array(100 * 1024)).then(
            (key) => keys.push(key),
            (caught: unknown) => {
              full = caught;
            },
          );
        }
        expect(StoreFullError.isInstance(full), `expected StoreFullError, got ${String(full)}`).toBe(true);
        expect(keys.length).toBeGreaterThan(5);
        await small.client.delete(keys.pop()!);
        keys.push(await small.client.put(new Uint8Array(100 * 1024)));
        for (const key of keys) await small.client.delete(key);
        expect((await small.client.usage()).objects).toBe(0);
      } finally {
        await small.close();
      }
    });

    it('allocates writable arrays of a kind and shape, readable under their key at once', async () => {
      const { key, array, dtype, shape } = await store.allocate('float32', [4, 8]);
      expect(array).toBeInstanceOf(Float32Array);
      expect(array.length).toBe(32);
      expect(dtype).toBe('float32');
      expect(shape).toEqual([4, 8]);
      expect(await store.has(key)).toBe(true);
      expect(await store.info(key)).toEqual({ key, kind: 'array', dtype: 'float32', shape: [4, 8], byteLength: 128 });
      const byLength = await store.allocate('biguint64', 3);
      expect(byLength.shape).toEqual([3]);
      expect(byLength.array).toBeInstanceOf(BigUint64Array);
      // numpy's bool (a mask for a Python actor): bytes here, and `bool` to every reader.
      const mask = await store.allocate('bool', [2, 2]);
      expect(mask.array).toBeInstanceOf(Uint8Array);
      mask.array.set([1, 0, 0, 1]);
      await store.flush?.();
      const read = await store.getArray(mask.key);
      expect(read.dtype).toBe('bool');
      expect(Array.from(read.array as Uint8Array)).toEqual([1, 0, 0, 1]);
      expect(await store.info(mask.key)).toMatchObject({ kind: 'array', dtype: 'bool', shape: [2, 2], byteLength: 4 });
      // Put again as it was read (a mask a TypeScript actor passes on): still bool; a copy is uint8.
      const again = await store.put(await store.get(mask.key), { shape: [2, 2] });
      expect(await store.info(again)).toMatchObject({ kind: 'array', dtype: 'bool', shape: [2, 2], byteLength: 4 });
      const copy = await store.put((await store.get<Uint8Array>(mask.key)).slice());
      expect(await store.info(copy)).toMatchObject({ kind: 'array', dtype: 'uint8', shape: [4] });
      await expect(store.allocate('float128' as TypedArrayKind, 3)).rejects.toThrow(TypeError);
      await expect(store.allocate('uint8', -1)).rejects.toThrow(RangeError);
    });

    // skipIf, not runIf: the suite keeps to what vitest and bun test both offer.
    it.skipIf(!zeroCopy)(
      'shares memory: allocated arrays and get() views see each other’s writes (zero copy)',
      async () => {
        const other = await connect(open);
        extraClients.push(other);
        const { key, array } = await store.allocate('int32', 16);
        array.fill(7);
        const view = await other.get<Int32Array>(key);
        expect(Array.from(view)).toEqual(new Array(16).fill(7));
        array[3] = -42; // written after the other client got its view
        expect(view[3]).toBe(-42);
        const fromPut = await other.put(new Float64Array([1, 2]));
        const mine = await store.get<Float64Array>(fromPut);
        const theirs = await other.get<Float64Array>(fromPut);
        theirs[1] = 5;
        expect(mine[1]).toBe(5);
      },
    );

    it('recognises its own keys in messages (isKey), and releaseKeys deletes exactly those', async () => {
      const other = await options.createDriver().open({ sizeBytes: 1 * MiB });
      try {
        const key = await store.put({ frame: 1 });
        const { key: allocated } = await store.allocate('float32', [4, 4]);
        const foreign = await other.client.put({ frame: 2 });
        expect(store.isKey(key)).toBe(true);
        expect(store.isKey(allocated)).toBe(true);
        for (const notKey of ['', 'frame-17', `${key}!`, `${key}.0`, `z${key.slice(1)}`, foreign]) {
          expect(store.isKey(notKey)).toBe(false);
        }
        const message = { t: 1.5, key, label: 'frame-17', nested: [{ allocated }], other: foreign };
        expect(storeKeysIn(message, store).sort()).toEqual([key, allocated].sort());
        expect(await releaseKeys(message, store)).toBe(2);
        expect([await store.has(key), await store.has(allocated), await other.client.has(foreign)]).toEqual([
          false,
          false,
          true,
        ]);
        // The form of a key, not its presence: a deleted key is still one of this store's keys.
        expect(store.isKey(key)).toBe(true);
        expect(await releaseKeys(message, store)).toBe(0);
      } finally {
        await other.close();
      }
    });

    it('serves one store to several clients: a key from one client works in another', async () => {
      const other = await connect(open);
      extraClients.push(other);
      const key = await store.put({ from: 'first client' });
      expect(await other.get(key)).toEqual({ from: 'first client' });
      expect(await other.delete(key)).toBe(true);
      expect(await store.has(key)).toBe(false);
      await expectNotFound(store.get(key), key);
    });

    it('allocate: the key exists at once, and after flush() every client reads what was written', async () => {
      const other = await connect(open);
      extraClients.push(other);
      const { key, array } = await store.allocate('float64', [2, 3]);
      expect(await other.has(key)).toBe(true);
      expect(await other.info(key)).toMatchObject({ kind: 'array', dtype: 'float64', shape: [2, 3], byteLength: 48 });
      array.set([1, 2, 3, 4, 5, 6]);
      // The writing client reads its own array before the flush, on every driver.
      expect(Array.from(await store.get<Float64Array>(key))).toEqual([1, 2, 3, 4, 5, 6]);
      await store.flush();
      expect(Array.from(await other.get<Float64Array>(key))).toEqual([1, 2, 3, 4, 5, 6]);
      expect((await other.getArray(key)).shape).toEqual([2, 3]);
      // Written again and flushed again: the value follows.
      array[0] = -1;
      await store.flush();
      expect((await other.get<Float64Array>(key))[0]).toBe(-1);
      await store.flush(); // nothing to write: resolves
    });

    it('flush() writes again the last flushed array whatever its size, and older ones within 4 MiB in all', async () => {
      const other = await connect(open);
      extraClients.push(other);
      const big = await store.allocate('uint8', 5 * MiB);
      big.array[0] = 1;
      await store.flush();
      big.array[0] = 2;
      await store.flush(); // the last flushed array: followed though it is over 4 MiB
      expect((await other.get<Uint8Array>(big.key))[0]).toBe(2);
      const small = await store.allocate('float32', 4);
      small.array[0] = 1;
      await store.flush();
      small.array[0] = 3;
      big.array[0] = 4; // no longer the last, and over the budget: a copying driver follows it no more
      await store.flush();
      expect((await other.get<Float32Array>(small.key))[0]).toBe(3);
      // A zero-copy driver has nothing to follow: every reader sees the array itself.
      expect((await other.get<Uint8Array>(big.key))[0]).toBe(zeroCopy ? 4 : 2);
    });

    it('expires a value after its ttlMs, saying so, and frees its space', async () => {
      const before = await store.usage();
      const key = await store.put(new Float32Array(1000), { ttlMs: 40 });
      const { key: allocated } = await store.allocate('uint8', 100, { ttlMs: 40 });
      await store.flush();
      const lasting = await store.put({ stays: true });
      expect(await store.has(key)).toBe(true);
      await until(async () => !(await store.has(key)) && !(await store.has(allocated)), 'the values to expire');
      for (const gone of [key, allocated]) {
        const error = await store.get(gone).catch((caught: unknown) => caught);
        expect(ObjectNotFoundError.isInstance(error), `expected ObjectNotFoundError, got ${String(error)}`).toBe(true);
        expect((error as Error).message).toContain(gone);
        expect((error as Error).message).toMatch(/expired/);
      }
      expect(await store.get(lasting)).toEqual({ stays: true });
      await store.delete(lasting);
      await until(async () => (await store.usage()).objects === before.objects, 'the expired values to be freed');
      expect(await store.usage()).toEqual(before);
      for (const bad of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
        await expect(store.put(1, { ttlMs: bad })).rejects.toThrow(RangeError);
      }
    });

    it('never lets a value expire while a reader holds it; release() lets it go', async () => {
      const reader = await connect(open);
      extraClients.push(reader);
      const key = await store.put(new Int16Array([1, 2, 3]), { ttlMs: 40 });
      const held = await reader.get<Int16Array>(key); // the read holds it for `reader`
      await sleep(250);
      expect(await reader.has(key)).toBe(true);
      expect(Array.from(await reader.get<Int16Array>(key))).toEqual([1, 2, 3]);
      expect(Array.from(held)).toEqual([1, 2, 3]);
      await reader.release(key);
      await until(async () => !(await store.has(key)), 'the released value to expire');
      await expect(store.get(key)).rejects.toThrow(/expired/);
    });

    it('lets a hold lapse after leaseMs, so a reader that died does not pin a value', async () => {
      const short = await options.createDriver().open({ sizeBytes: MiB, leaseMs: 100 });
      try {
        const key = await short.client.put({ frame: 1 }, { ttlMs: 30 });
        await short.client.get(key); // held, never released
        await until(async () => !(await short.client.has(key)), 'the lapsed hold to let the value expire');
      } finally {
        await short.close();
      }
    });

    it('store_eviction oldest: frees the oldest read, unheld values — never unread, held or in-flight ones', async () => {
      const small = await options.createDriver().open({ sizeBytes: MiB, eviction: 'oldest' });
      const reader = await connect(small);
      extraClients.push(reader);
      try {
        const client = small.client;
        const frame = () => new Uint8Array(64 * 1024);
        // Nothing read yet: nothing may be evicted, so the store fills up and says why.
        const unread: StoreKey[] = [];
        let full: unknown;
        for (let index = 0; index < 40 && full === undefined; index++) {
          await client.put(frame()).then(
            (key) => unread.push(key),
            (caught: unknown) => {
              full = caught;
            },
          );
        }
        expect(StoreFullError.isInstance(full), `expected StoreFullError, got ${String(full)}`).toBe(true);
        expect((full as Error).message).toMatch(/not (yet )?(been )?read|unread/);
        expect(unread.length).toBeGreaterThan(8);
        // Read them all; keep a hold on the oldest, and one more in flight in a link.
        for (const key of unread) await reader.get(key);
        await reader.release();
        const [heldKey, inFlight, ...rest] = unread as [StoreKey, StoreKey, ...StoreKey[]];
        await reader.get(heldKey);
        await client.track([inFlight], 1);
        // Now every put fits, freeing the oldest read values that nobody holds.
        for (let index = 0; index < 6; index++) await client.put(frame());
        expect(await client.has(heldKey)).toBe(true);
        expect(await client.has(inFlight)).toBe(true);
        expect(await client.has(rest[0]!)).toBe(false);
        const error = await client.get(rest[0]!).catch((caught: unknown) => caught);
        expect(ObjectNotFoundError.isInstance(error), `expected ObjectNotFoundError, got ${String(error)}`).toBe(true);
        expect((error as Error).message).toMatch(/evicted/);
        expect(await client.has(rest[rest.length - 1]!)).toBe(true);
        // Once released and taken out of the link, those go too when space is needed.
        await reader.release();
        await client.track([inFlight], -1);
        // (Few puts: the new values are unread, so only the ones read before can make room.)
        for (let index = 0; index < 3; index++) await client.put(frame());
        expect(await client.has(heldKey)).toBe(false);
        expect(await client.has(inFlight)).toBe(false);
        const usage = await client.usage();
        expect(usage.usedBytes).toBeLessThanOrEqual(usage.capacityBytes);
      } finally {
        await small.close();
      }
    });

    it('says who can share it (reach) and whether it hands out shared memory (zeroCopy)', () => {
      const driver = options.createDriver();
      expect(['process', 'host', 'network']).toContain(driver.reach);
      expect(typeof driver.zeroCopy).toBe('boolean');
    });

    it('keeps every value intact with 4 workers putting, reading and deleting at once', async () => {
      const entry = siblingModule(import.meta.url, './_store-worker');
      await hammer(open, store, 4, 1500, (index) =>
        options.runtime.spawnWorker({ name: `store-hammer-${index}`, entry }),
      );
      // ~80,000 round trips on a network driver: generous, for a loaded machine.
    }, 180_000);

    it.skipIf(spawnProcess === undefined)(
      'keeps every value intact with 3 OS processes putting, reading and deleting at once',
      async () => {
        await hammer(open, store, 3, 500, (index) => spawnProcess!(`store-hammer-process-${index}`));
      },
      180_000,
    );
  });
}

/**
 * The hammer: `count` workers or processes put, read and delete at once, then verify and delete
 * each other's values; every value is checked against its recipe, and the store ends as it began.
 */
async function hammer(
  open: OpenStore,
  store: StoreClient,
  count: number,
  cycles: number,
  start: (index: number) => Promise<WorkerHandle>,
): Promise<void> {
  const workerCount = count;
  const shareEvery = 10;
  const before = await store.usage();
  const workers: WorkerHandle[] = [];
  try {
    for (let index = 0; index < workerCount; index++) {
      workers.push(await start(index));
    }
    const replies = workers.map((worker, index) => replyQueue(worker, `store-hammer-${index}`));
    const ask = (index: number, command: HammerCommand) => {
      workers[index]!.postMessage(command);
      return replies[index]!();
    };
    await Promise.all(workers.map((_, index) => ask(index, { type: 'connect', descriptor: open.descriptor })));

    // Round 1: everyone hammers at once and keeps every tenth value for another worker.
    const first = (await Promise.all(
      workers.map((_, index) =>
        ask(index, { type: 'run', writer: index, firstSequence: 0, cycles, shareEvery, foreign: [] }),
      ),
    )) as HammerReport[];
    const shared = first.flatMap((report) => report.shared);
    expect(shared.length).toBe(workerCount * (cycles / shareEvery));
    // The main thread reads a sample of what the workers wrote (arrays written in place included).
    for (const sample of shared.slice(0, 40)) {
      expect(await checkValue(store, sample.key, sample.writer, sample.sequence)).toBeUndefined();
    }
    await store.release();

    // Round 2: everyone hammers again while verifying and deleting the next worker's values.
    const second = (await Promise.all(
      workers.map((_, index) =>
        ask(index, {
          type: 'run',
          writer: index,
          firstSequence: cycles,
          cycles,
          shareEvery: 0,
          foreign: first[(index + 1) % workerCount]!.shared as SharedKey[],
        }),
      ),
    )) as HammerReport[];

    const reports = [...first, ...second];
    expect(reports.flatMap((report) => report.problems)).toEqual([]);
    expect(reports.reduce((sum, report) => sum + report.mismatches, 0)).toBe(0);
    expect(reports.reduce((sum, report) => sum + report.puts, 0)).toBe(2 * workerCount * cycles);
    expect(second.reduce((sum, report) => sum + report.foreignVerified, 0)).toBe(shared.length);
    expect(second.every((report) => report.shared.length === 0)).toBe(true);
    for (const key of shared) expect(await store.has(key.key)).toBe(false);

    await Promise.all(workers.map((worker) => quit(worker)));
    expect(await store.usage()).toEqual(before);
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

/** Replies of a worker, one per call; a failure report, an error or an exit rejects. */
function replyQueue(worker: WorkerHandle, name: string): () => Promise<unknown> {
  const waiting: { resolve: (value: unknown) => void; reject: (error: Error) => void }[] = [];
  const arrived: unknown[] = [];
  let failure: Error | undefined;
  const fail = (error: Error) => {
    failure ??= error;
    for (const waiter of waiting.splice(0)) waiter.reject(error);
  };
  worker.onMessage((message) => {
    const failed = message as { type?: unknown; message?: unknown };
    if (failed.type === 'failed') return fail(new Error(`${name} failed: ${String(failed.message)}`));
    const waiter = waiting.shift();
    if (waiter) waiter.resolve(message);
    else arrived.push(message);
  });
  worker.onError((error) => fail(new Error(`${name} died: ${error.message}`, { cause: error })));
  worker.onExit((code) => fail(new Error(`${name} exited with code ${code}`)));
  return () => {
    if (arrived.length > 0) return Promise.resolve(arrived.shift());
    if (failure) return Promise.reject(failure);
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  };
}

/** Polls `condition` every 20 ms for up to 10 s (generous: the machine is shared). */
async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after 10 s waiting for ${what}`);
    await sleep(20);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sends `quit` and resolves once the worker has exited. */
function quit(worker: WorkerHandle): Promise<void> {
  return new Promise((resolve) => {
    worker.onExit(() => resolve());
    worker.postMessage({ type: 'quit' } satisfies HammerCommand);
  });
}
