import { Buffer } from 'node:buffer';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BOOL_DTYPE_CODE,
  currentRuntimeName,
  detectRuntime,
  ObjectNotFoundError,
  StoreUnavailableError,
  type TypedArray,
  typedArrayConstructors,
  typedArrayKinds,
} from '@improv/core';
import { describeStoreConformance } from '@improv/core/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MAX_FOLLOWED } from '../src/_follow.ts';
import { connectStore, createLmdbStore, type LmdbOpenStore, lmdbStoreProblem } from '../src/lmdb.ts';
import { spawnStoreProcess } from './_process.ts';

// The adapter of the runtime this file runs in: the suite runs on Node, Bun and Deno.
const runtime = await detectRuntime();
const MiB = 1024 * 1024;
const root = fileURLToPath(new URL('../../..', import.meta.url));
const lmdbModule = new URL('../src/lmdb.ts', import.meta.url).href;
const scratch = mkdtempSync(join(tmpdir(), 'improv-lmdb-test-'));
let stores = 0;
const freshPath = () => join(scratch, `store-${++stores}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

describeStoreConformance({
  name: 'lmdb',
  createDriver: () => createLmdbStore({ path: freshPath() }),
  runtime,
  spawnProcess: spawnStoreProcess,
});

/** Runs `code` (an ES module body) in a new process of this runtime; resolves to its stdout. */
function evalCommand(code: string): [string, string[]] {
  const name = currentRuntimeName();
  if (name === 'deno') return [process.execPath, ['eval', code]];
  if (name === 'bun') return [process.execPath, ['-e', code]];
  return [process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code]];
}

function runChild(code: string): { stdout: string; stderr: string; status: number | null } {
  const [command, args] = evalCommand(code);
  const result = spawnSync(command, args, { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { stdout: result.stdout, stderr: result.stderr, status: result.status };
}

/** The first python3 that has numpy (the doc's reader needs no lmdb module), or undefined. */
function findPython(): string | undefined {
  for (const candidate of [process.env.PYTHON, 'python3', '/usr/bin/python3']) {
    if (candidate === undefined || candidate === '') continue;
    const probe = spawnSync(candidate, ['-c', 'import numpy'], { encoding: 'utf8' });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}
const python = findPython();

/** Element `index` of frame `frame` in the SIGKILL test: every bit of every frame is known. */
const killValue = (frame: number, index: number) => frame * 1_000_003 + index * 0.25 - 17;

describe('lmdb store', () => {
  const opened: LmdbOpenStore[] = [];
  const open = async (
    path: string,
    options: { keep?: boolean; sizeBytes?: number; leaseMs?: number; eviction?: 'none' | 'oldest' } = {},
  ) => {
    const store = await createLmdbStore({ path, keep: options.keep ?? false }).open({
      sizeBytes: options.sizeBytes ?? 16 * MiB,
      ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
      ...(options.eviction === undefined ? {} : { eviction: options.eviction }),
    });
    opened.push(store);
    return store;
  };

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  it('describes itself, and its descriptor is plain JSON pointing at the module exporting connectStore', async () => {
    const driver = createLmdbStore({ path: freshPath() });
    expect(driver.name).toBe('lmdb');
    expect(driver.reach).toBe('host');
    expect(driver.zeroCopy).toBe(false);
    expect(driver.specificationVersion).toBe(1);
    expect(driver.sizeLimits).toEqual({ driver: 'lmdb', minBytes: 4096, maxBytes: 2 ** 43 });
    const store = await driver.open({ sizeBytes: MiB });
    opened.push(store);
    const copy = JSON.parse(JSON.stringify(store.descriptor));
    expect(copy).toEqual(store.descriptor);
    const module = (await import(store.descriptor.module)) as { connectStore: unknown };
    expect(module.connectStore).toBe(connectStore);
    const other = await connectStore(copy);
    const key = await other.put(new Int32Array([7]));
    expect(Array.from(await store.client.get<Int32Array>(key))).toEqual([7]);
    await other.close();
    expect((await store.client.usage()).capacityBytes).toBe(MiB);
    await expect(driver.open({ sizeBytes: MiB })).rejects.toThrow(/already open in this process/);
    await expect(connectStore({ module: 'x', driver: 'lmdb' })).rejects.toThrow(/not an open lmdb store/);
  });

  it('keeps every typed-array kind bit-exact (NaN payloads, -0, extremes) and counts header + index in usage', async () => {
    const store = await open(freshPath());
    const client = store.client;
    const before = await client.usage();
    let charged = 0;
    // TypeScript's own kinds (bool, numpy's, is written by allocate or by Python: see those tests).
    for (const [index, ctor] of typedArrayConstructors.slice(0, BOOL_DTYPE_CODE - 1).entries()) {
      const bytes = new Uint8Array(ctor.BYTES_PER_ELEMENT * 37);
      for (let byte = 0; byte < bytes.length; byte++) bytes[byte] = (byte * 151 + index * 7 + 255) & 0xff;
      const array = new ctor(bytes.buffer, 0, 37) as TypedArray;
      const key = await client.put(array, { shape: [37, 1] });
      const back = await client.getArray(key);
      expect(back.dtype).toBe(typedArrayKinds[index]);
      expect(back.shape).toEqual([37, 1]);
      expect(back.array.constructor).toBe(ctor);
      expect(back.array.byteOffset).toBe(0);
      expect(back.array.buffer.byteLength).toBe(bytes.length); // memory of its own, nothing around it
      expect(new Uint8Array(back.array.buffer)).toEqual(bytes);
      charged += 16 + 2 * 8 + bytes.length + 64;
    }
    const special = new Float64Array([Number.NaN, -0, Number.MAX_VALUE, Number.MIN_VALUE, -Infinity]);
    new DataView(special.buffer).setUint32(0, 0x7ff80001, true); // a NaN with a payload
    const specialKey = await client.put(special);
    const specialBack = await client.get<Float64Array>(specialKey);
    expect(new Uint8Array(specialBack.buffer)).toEqual(new Uint8Array(special.buffer));
    expect(Object.is(specialBack[1], -0)).toBe(true);
    charged += 16 + 8 + special.byteLength + 64;
    expect((await client.usage()).usedBytes - before.usedBytes).toBe(charged);
    // A get is a copy: changing it changes nothing in the store.
    specialBack[2] = 1;
    expect((await client.get<Float64Array>(specialKey))[2]).toBe(Number.MAX_VALUE);
  });

  it('keep: true — values survive close and reopen with their keys, and a reader in another process sees them', async () => {
    const path = freshPath();
    const first = await createLmdbStore({ path, keep: true }).open({ sizeBytes: 16 * MiB });
    const frame = Float32Array.from({ length: 64 * 64 }, (_, index) => index / 8);
    const frameKey = await first.client.put(frame, { shape: [64, 64] });
    const valueKey = await first.client.put({ label: 'kept', n: 3 });
    const { key: allocated, array } = await first.client.allocate('int16', [2, 2]);
    array.set([1, -2, 3, -4]);
    await first.client.flush();
    await first.close();
    expect(existsSync(join(path, 'data.mdb'))).toBe(true);

    // Another process reads the kept store read-only.
    const child = runChild(`
      const { openLmdbStoreReader } = await import(${JSON.stringify(lmdbModule)});
      const reader = await openLmdbStoreReader(${JSON.stringify(path)});
      const out = { usage: reader.usage(), openBy: reader.openBy ?? null, entries: reader.list(), values: {} };
      for (const entry of out.entries) {
        const { value } = reader.read(entry.key);
        out.values[entry.key] = entry.kind === 'array' ? { dtype: value.dtype, shape: value.shape, sum: Array.from(value.array).reduce((a, b) => a + b, 0) } : value;
      }
      await reader.close();
      console.log(JSON.stringify(out));
    `);
    expect(child.stderr).toBe('');
    const seen = JSON.parse(child.stdout) as {
      usage: { objects: number };
      openBy: number | null;
      entries: { key: string; kind: string; dtype?: string; shape?: number[] }[];
      values: Record<string, unknown>;
    };
    expect(seen.openBy).toBeNull();
    expect(seen.usage.objects).toBe(3);
    expect(seen.entries.map((entry) => entry.key)).toEqual([frameKey, valueKey, allocated]);
    expect(seen.values[frameKey]).toEqual({ dtype: 'float32', shape: [64, 64], sum: frame.reduce((a, b) => a + b, 0) });
    expect(seen.values[valueKey]).toEqual({ label: 'kept', n: 3 });
    expect(seen.values[allocated]).toEqual({ dtype: 'int16', shape: [2, 2], sum: -2 });

    // The next run on the path opens the same store: old keys work, new keys do not collide.
    const second = await open(path, { keep: true });
    expect(second.descriptor.keyPrefix).toBe(first.descriptor.keyPrefix);
    const { array: back, shape } = await second.client.getArray<Float32Array>(frameKey);
    expect(shape).toEqual([64, 64]);
    expect(back).toEqual(frame);
    expect(await second.client.get(valueKey)).toEqual({ label: 'kept', n: 3 });
    const fresh = await second.client.put(1);
    expect([frameKey, valueKey, allocated]).not.toContain(fresh);
    // A client of the first run is refused: its run ended.
    await expect(connectStore(first.descriptor)).rejects.toThrow(StoreUnavailableError);
    // While a run has it open, another run is refused, and so is keep: false on a kept store.
    await expect(createLmdbStore({ path, keep: true }).open({ sizeBytes: MiB })).rejects.toThrow(
      /in use by another run/,
    );
    await second.close();
    await expect(createLmdbStore({ path }).open({ sizeBytes: MiB })).rejects.toThrow(/kept by an earlier run/);
  });

  it('reopening a kept store keeps its map size and its values, round after round', async () => {
    const path = freshPath();
    const first = await open(path, { keep: true, sizeBytes: 16 * MiB });
    const key = await first.client.put(new Float64Array([1, 2, 3]));
    const { mapSize } = first.descriptor;
    await first.close();
    for (let round = 0; round < 2; round++) {
      const again = await open(path, { keep: true, sizeBytes: 16 * MiB });
      expect(again.descriptor.mapSize).toBe(mapSize);
      expect(Array.from(await again.client.get<Float64Array>(key))).toEqual([1, 2, 3]);
      await again.close();
    }
  });

  it('keep: false — the files (and the folder it created) are removed at close', async () => {
    const parent = freshPath();
    const path = join(parent, 'nested', 'run.lmdb'); // an extension, and still a folder
    const store = await createLmdbStore({ path }).open({ sizeBytes: MiB });
    await store.client.put(new Uint8Array(1000));
    expect(existsSync(join(path, 'data.mdb'))).toBe(true);
    expect(existsSync(join(path, 'lock.mdb'))).toBe(true);
    await store.close();
    expect(existsSync(path)).toBe(false);
    // A folder that was there already stays, with whatever else it holds.
    const existing = freshPath();
    mkdirSync(existing);
    writeFileSync(join(existing, 'notes.txt'), 'mine');
    const second = await createLmdbStore({ path: existing }).open({ sizeBytes: MiB });
    await second.close();
    expect(existsSync(join(existing, 'data.mdb'))).toBe(false);
    expect(readFileSync(join(existing, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('fails with StoreUnavailableError, not a hang, once the store is closed or its files removed under a client', async () => {
    const store = await createLmdbStore({ path: freshPath() }).open({ sizeBytes: MiB });
    const client = await connectStore(store.descriptor);
    const key = await client.put(1);
    await store.close();
    for (const call of [() => client.put(2), () => client.get(key), () => client.has(key), () => client.usage()]) {
      const error = await call().catch((caught: unknown) => caught);
      expect(StoreUnavailableError.isInstance(error), `expected StoreUnavailableError, got ${String(error)}`).toBe(
        true,
      );
    }
    await client.close();
    await expect(client.put(3)).rejects.toThrow(/client .* was closed/);

    const path = freshPath();
    const removed = await open(path);
    const key2 = await removed.client.put(2);
    rmSync(path, { recursive: true, force: true });
    // A write notices at once; a read within a few ms (reads check the files at most every 2 ms).
    const writeError = await removed.client.put(3).catch((caught: unknown) => caught);
    expect(
      StoreUnavailableError.isInstance(writeError),
      `expected StoreUnavailableError, got ${String(writeError)}`,
    ).toBe(true);
    await sleep(5);
    const error = await removed.client.get(key2).catch((caught: unknown) => caught);
    expect(StoreUnavailableError.isInstance(error), `expected StoreUnavailableError, got ${String(error)}`).toBe(true);
    expect((error as Error).message).toContain(path);
  });

  it('says why a key is missing: evicted, expired, of another store, or unknown', async () => {
    const store = await open(freshPath(), { sizeBytes: MiB, eviction: 'oldest' });
    const client = store.client;
    const expiring = await client.put({ short: true }, { ttlMs: 20 });
    const first = await client.put(new Uint8Array(300 * 1024));
    await client.get(first);
    await client.release();
    for (let index = 0; index < 3; index++) await client.put(new Uint8Array(300 * 1024));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expect(client.get(first)).rejects.toThrow(/evicted/);
    await expect(client.get(expiring)).rejects.toThrow(/expired/);
    const other = await open(freshPath(), { sizeBytes: MiB });
    await expect(other.client.get(first)).rejects.toThrow(/not a key of this store/);
    await client.delete(await client.put(1));
    const deleted = await client.put(2);
    await client.delete(deleted);
    const error = await client.get(deleted).catch((caught: unknown) => caught);
    expect(ObjectNotFoundError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/deleted, or never stored/);
  });

  it('batchDeletes: a delete is gone for its client at once, for the others once committed, many in one commit', async () => {
    const store = await open(freshPath());
    const other = store.client;
    const client = await connectStore(store.descriptor, { batchDeletes: true });
    try {
      const keys = await Promise.all(Array.from({ length: 3 }, (_, index) => other.put(new Int32Array([index]))));
      expect(await client.delete(keys[0]!)).toBe(true);
      // Gone here at once; deleting it again says so.
      expect(await client.has(keys[0]!)).toBe(false);
      expect(await client.delete(keys[0]!)).toBe(false);
      await expect(client.get(keys[0]!)).rejects.toThrow(/deleted, or never stored/);
      await expect(client.info(keys[0]!)).rejects.toThrow(/deleted, or never stored/);
      // Not committed yet: the other clients still read it.
      expect(await other.has(keys[0]!)).toBe(true);
      // flush() without deletes leaves it staged; a flush commits it.
      await client.flush({ deletes: false });
      expect(await other.has(keys[0]!)).toBe(true);
      await client.flush();
      expect(await other.has(keys[0]!)).toBe(false);
      // A write of the client commits what it staged with it.
      await client.delete(keys[1]!);
      await client.put('x');
      expect(await other.has(keys[1]!)).toBe(false);
      // On its own, a few ms later.
      await client.delete(keys[2]!);
      const staged = Date.now();
      while ((await other.has(keys[2]!)) && Date.now() - staged < 10_000) await sleep(1);
      expect(await other.has(keys[2]!)).toBe(false);
      // usage() counts what this client deleted as gone.
      expect((await client.usage()).objects).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('batchDeletes: anything but true or false is refused, naming the option and what each value does', async () => {
    const store = await open(freshPath());
    await expect(connectStore(store.descriptor, { batchDeletes: 'yes' as never })).rejects.toThrow(
      /connectStore\(descriptor, \{ batchDeletes \}\) takes true or false, not yes; true commits deletes in batches/,
    );
  });

  it('batchDeletes: 256 deletes or 1 MiB of values commit at once, and close() commits the rest', async () => {
    const batch = 256;
    const store = await open(freshPath());
    const other = store.client;
    const client = await connectStore(store.descriptor, { batchDeletes: true });
    const keys: string[] = [];
    for (let index = 0; index < batch + 2; index++) keys.push(await other.put(index));
    for (const key of keys.slice(0, batch - 1)) await client.delete(key);
    expect((await other.usage()).objects).toBe(batch + 2);
    await client.delete(keys[batch - 1]!); // the 256th
    expect((await other.usage()).objects).toBe(2);
    const large = await other.put(new Uint8Array(MiB));
    await client.delete(large);
    expect(await other.has(large)).toBe(false);
    await client.delete(keys[batch]!);
    await other.delete(keys[batch + 1]!);
    await client.delete(keys[batch + 1]!).catch(() => undefined);
    await client.close();
    expect((await other.usage()).objects).toBe(0);
  });

  /** A store, its owner's client (`other`) and a client that batches puts, as an actor's does. */
  const batching = async (options: { sizeBytes?: number } = {}) => {
    const store = await open(freshPath(), options);
    return { other: store.client, client: await connectStore(store.descriptor, { batchPuts: true }) };
  };

  it('batchPuts: a put is read by its client at once, by the others once written, many in one commit', async () => {
    const { other, client } = await batching();
    try {
      const staged = await client.put(new Float32Array([1, 2]), { shape: [1, 2] });
      const dropped = await client.put('never written');
      // Staged: the others do not see it yet; this client does, and deleting one means it never lands.
      expect(await other.has(staged)).toBe(false);
      expect(await client.has(staged)).toBe(true);
      expect(await client.delete(dropped)).toBe(true);
      expect(await client.has(dropped)).toBe(false);
      await client.flush({ deletes: false });
      const read = await other.getArray<Float32Array>(staged);
      expect(Array.from(read.array)).toEqual([1, 2]);
      expect(read.shape).toEqual([1, 2]);
      expect(await other.has(dropped)).toBe(false);
      // A read of this client writes what it staged first.
      const own = await client.put({ own: true });
      expect(await client.get(own)).toEqual({ own: true });
      expect(await other.get(own)).toEqual({ own: true });
      // On its own, a few ms later.
      const later = await client.put('later');
      const since = Date.now();
      while (!(await other.has(later)) && Date.now() - since < 10_000) await sleep(1);
      expect(await other.get(later)).toBe('later');
      // 256 puts are written in one commit, without a flush.
      const many: string[] = [];
      for (let index = 0; index < 256; index++) many.push(await client.put(index));
      expect(await other.get(many[255]!)).toBe(255);
      // A value of 1 MiB or more is written at once.
      const large = await client.put(new Uint8Array(MiB));
      expect((await other.info(large)).byteLength).toBe(MiB);
      // close() writes what is left.
      await client.put('last');
    } finally {
      await client.close();
    }
    expect((await other.usage()).objects).toBe(261);
  });

  it('batchPuts: an allocation is staged too: in the store, written, from the first flush; dropped if deleted before', async () => {
    const { other, client } = await batching();
    try {
      const { key, array } = await client.allocate('float32', [2, 2]);
      array.set([1, 2, 3, 4]);
      // Not in the store yet: the others do not see it; this client reads its own array.
      expect(await other.has(key)).toBe(false);
      expect(await client.has(key)).toBe(true);
      expect(Array.from(await client.get<Float32Array>(key))).toEqual([1, 2, 3, 4]);
      await client.flush();
      const read = await other.getArray<Float32Array>(key);
      expect(Array.from(read.array)).toEqual([1, 2, 3, 4]);
      expect(read.shape).toEqual([2, 2]);
      // Written again when it changes, as any flushed allocation.
      array[0] = 9;
      await client.flush();
      expect(Array.from(await other.get<Float32Array>(key))).toEqual([9, 2, 3, 4]);
      // info() writes it first; a delete before any flush means it never lands.
      const seen = await client.allocate('uint8', 3);
      expect((await client.info(seen.key)).byteLength).toBe(3);
      expect(await other.has(seen.key)).toBe(true);
      const dropped = await client.allocate('uint8', 3);
      expect(await client.delete(dropped.key)).toBe(true);
      await client.flush();
      expect(await other.has(dropped.key)).toBe(false);
      expect((await other.usage()).objects).toBe(2);
    } finally {
      await client.close();
    }
  });

  it(`batchPuts: a flush of more arrays than it follows writes again only the newest ${MAX_FOLLOWED} when they change`, async () => {
    const { other, client } = await batching();
    try {
      const count = MAX_FOLLOWED + 48;
      const allocations = [];
      for (let index = 0; index < count; index++) allocations.push(await client.allocate('uint16', 4));
      for (const [index, { array }] of allocations.entries()) array[0] = index;
      await client.flush(); // all written at once; only the newest are followed from here
      for (const { array } of allocations) array[1] = 7;
      await client.flush();
      for (const [index, { key }] of allocations.entries()) {
        const followed = index >= count - MAX_FOLLOWED;
        expect(Array.from(await other.get<Uint16Array>(key))).toEqual([index, followed ? 7 : 0, 0, 0]);
      }
    } finally {
      await client.close();
    }
  });

  it('batchPuts: a put that may not fit throws at once; one the store had no room for at its commit waits, and flush() says so', async () => {
    const { other, client } = await batching({ sizeBytes: MiB });
    try {
      const free = (await other.usage()).capacityBytes - (await other.usage()).usedBytes;
      await expect(client.put(new Uint8Array(free + 1))).rejects.toThrow(/lmdb store is full/);
      // Staged while there was room; another client takes the room before the commit.
      const waiting = await client.put(new Uint8Array(300 * 1024));
      const filler = await other.put(new Uint8Array(free - 200 * 1024));
      await expect(client.flush()).rejects.toThrow(
        /lmdb store is full: .* \(1 value\(s\) put or allocated by this client wait to be written; the messages that carry their keys wait with them\)/,
      );
      expect(await other.has(waiting)).toBe(false);
      // Room again: the next flush writes it.
      await other.delete(filler);
      await client.flush();
      expect((await other.info(waiting)).byteLength).toBe(300 * 1024);
    } finally {
      await client.close();
    }
  });

  it('batchPuts: every staged value lands bit-exact, across many commits and one the store had no room for', async () => {
    const { other, client } = await batching({ sizeBytes: 4 * MiB });
    try {
      const filled = (length: number, seed: number) =>
        Uint8Array.from({ length }, (_, index) => (index * 7 + seed) % 251);
      const put = new Map<string, { length: number; seed: number }>();
      for (let seed = 0; seed < 600; seed++) {
        const value = filled(8 + (seed % 5) * 1000, seed);
        put.set(await client.put(value), { length: value.length, seed });
        value.fill(0); // the put took its own copy
      }
      await client.flush();
      for (const [key, { length, seed }] of put) expect(await other.get(key)).toEqual(filled(length, seed));
      for (const key of put.keys()) await other.delete(key);
      // Staged while there was room; another client takes it before the commit: these wait, and more
      // are staged behind them, until there is room again.
      const free = (await other.usage()).capacityBytes - (await other.usage()).usedBytes;
      const waiting = [await client.put(filled(300 * 1024, 1)), await client.put(filled(100, 2))];
      const filler = await other.put(new Uint8Array(free - 200 * 1024));
      await expect(client.flush()).rejects.toThrow(/lmdb store is full/);
      await other.delete(filler);
      const behind = [await client.put(filled(50 * 1024, 3)), await client.put(filled(100, 4))];
      await client.flush();
      expect(await other.get(waiting[0]!)).toEqual(filled(300 * 1024, 1));
      expect(await other.get(waiting[1]!)).toEqual(filled(100, 2));
      expect(await other.get(behind[0]!)).toEqual(filled(50 * 1024, 3));
      expect(await other.get(behind[1]!)).toEqual(filled(100, 4));
    } finally {
      await client.close();
    }
  });

  it('batchPuts: anything but true or false is refused, naming the option', async () => {
    const store = await open(freshPath());
    await expect(connectStore(store.descriptor, { batchPuts: 1 as never })).rejects.toThrow(
      /connectStore\(descriptor, \{ batchPuts \}\) takes true or false, not 1; true commits puts in batches/,
    );
  });

  it('a read takes a hold and marks the value read only where eviction or a TTL could free it', async () => {
    const { openLmdbStoreReader } = await import('../src/lmdb.ts');
    const plainPath = freshPath();
    const plain = await open(plainPath);
    const kept = await plain.client.put(new Float32Array([1, 2]));
    const timed = await plain.client.put(new Float32Array([3]), { ttlMs: 60_000 });
    expect(Array.from(await plain.client.get<Float32Array>(kept))).toEqual([1, 2]);
    expect(Array.from(await plain.client.get<Float32Array>(timed))).toEqual([3]);
    const evictingPath = freshPath();
    const evicting = await open(evictingPath, { eviction: 'oldest' });
    const read = await evicting.client.put(new Float32Array([4]));
    expect(Array.from(await evicting.client.get<Float32Array>(read))).toEqual([4]);
    const plainReader = await openLmdbStoreReader(plainPath);
    const evictingReader = await openLmdbStoreReader(evictingPath);
    try {
      // Nothing can free `kept` but a delete: its read wrote nothing.
      expect(plainReader.entry(kept)?.read).toBe(false);
      expect(plainReader.entry(timed)?.read).toBe(true);
      expect(evictingReader.entry(read)?.read).toBe(true);
    } finally {
      await plainReader.close();
      await evictingReader.close();
    }
  });

  it('lmdbStoreProblem finds what opening would refuse, changing nothing: a store in use, a kept one with keep: false', async () => {
    const path = freshPath();
    expect(await lmdbStoreProblem(path, false)).toBeUndefined();
    expect(existsSync(path)).toBe(false); // nothing made
    const kept = await createLmdbStore({ path, keep: true }).open({ sizeBytes: MiB });
    const key = await kept.client.put(new Float64Array([1, 2]));
    // Open now: another run may not open it, whatever its keep.
    expect(await lmdbStoreProblem(path, true)).toMatch(
      new RegExp(`^lmdb store: the store at ${path} is in use by another run \\(process ${process.pid}, `),
    );
    await kept.close();
    expect(await lmdbStoreProblem(path, true)).toBeUndefined();
    expect(await lmdbStoreProblem(path, false)).toBe(
      `lmdb store: ${path} holds a store kept by an earlier run (keep: true); a run with keep: false would delete it at its end. Reopen it with keep: true, move or delete it, or give another path (settings.lmdb.path)`,
    );
    // The same refusals as opening it.
    await expect(createLmdbStore({ path, keep: false }).open({ sizeBytes: MiB })).rejects.toThrow(
      'holds a store kept by an earlier run',
    );
    const again = await createLmdbStore({ path, keep: true }).open({ sizeBytes: MiB });
    expect(await again.client.get(key)).toEqual(new Float64Array([1, 2]));
    await again.close();
  });

  it('refuses an unwritable path with the path and the fix', async () => {
    const file = join(scratch, 'a-file');
    writeFileSync(file, 'not a folder');
    for (const path of [file, join(file, 'store')]) {
      const error = await createLmdbStore({ path })
        .open({ sizeBytes: MiB })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toContain(path);
      expect((error as Error).message).toMatch(/Give a folder this process can create and write/);
    }
    if (existsSync('/proc/self/status')) {
      // A place where no folder can be made: refused at once (Node's recursive mkdir never returns
      // under /proc, at 100% CPU).
      await expect(createLmdbStore({ path: '/proc/improv-test/run.lmdb' }).open({ sizeBytes: MiB })).rejects.toThrow(
        'cannot create or write the store folder /proc/improv-test/run.lmdb (cannot use /proc/improv-test/run.lmdb as a folder: it cannot be created there)',
      );
    }
    if (process.getuid?.() !== 0) {
      // Not root: a folder without write permission (root writes anywhere).
      const locked = freshPath();
      mkdirSync(locked);
      chmodSync(locked, 0o500);
      try {
        await expect(createLmdbStore({ path: join(locked, 'store') }).open({ sizeBytes: MiB })).rejects.toThrow(
          /cannot create or write/,
        );
      } finally {
        chmodSync(locked, 0o700);
      }
    }
  });

  it('refuses a store_size the filesystem has no room for, naming settings.store_size and the free space', async () => {
    const path = freshPath();
    const stats = statfsSync(scratch);
    const free = Number(stats.bavail) * Number(stats.bsize);
    const { maxBytes } = createLmdbStore({ path }).sizeLimits;
    const tooBig = Math.min(maxBytes, free + 1024 * MiB);
    if (tooBig <= free) return; // a disk with more free space than the driver's largest store
    const error = await createLmdbStore({ path })
      .open({ sizeBytes: tooBig })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(/settings\.store_size/);
    expect((error as Error).message).toMatch(/only .* is free/);
    expect(existsSync(join(path, 'data.mdb'))).toBe(false);
    await expect(createLmdbStore({ path }).open({ sizeBytes: 100 })).rejects.toThrow(/at least 4096/);
    await expect(createLmdbStore({ path }).open({ sizeBytes: 2 ** 44 })).rejects.toThrow(/over the limit/);
  });

  it('keeps every value whose put() resolved, untorn, when the writing process is killed with SIGKILL', async () => {
    const path = freshPath();
    const store = await createLmdbStore({ path, keep: true }).open({ sizeBytes: 256 * MiB });
    const [command, args] = evalCommand(`
      const { connectStore } = await import(${JSON.stringify(lmdbModule)});
      const store = await connectStore(${JSON.stringify(store.descriptor)});
      for (let frame = 0; ; frame++) {
        const length = 1000 + (frame % 7) * 20000; // 8 KB to 1 MB: commits of every size
        const array = new Float64Array(length);
        for (let index = 0; index < length; index++) array[index] = frame * 1_000_003 + index * 0.25 - 17;
        const key = await store.put(array, { shape: [length] });
        process.stdout.write(key + ' ' + frame + '\\n');
      }
    `);
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<string | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the writer printed no keys in time: ${stderr}`)), 60_000);
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.split('\n').length > 60) {
          clearTimeout(timer);
          child.kill('SIGKILL'); // in the middle of whatever put it is doing
          resolve();
        }
      });
    });
    expect(await exited).toBe('SIGKILL');
    await store.close();

    // The last line may have been cut short by the kill: only whole lines count.
    const printed = output
      .split('\n')
      .slice(0, -1)
      .filter((line) => line.trim() !== '')
      .map((line) => line.split(' ') as [string, string])
      .filter(([, frame]) => frame !== undefined && frame !== '');
    expect(printed.length).toBeGreaterThan(50);
    const reopened = await open(path, { keep: true, sizeBytes: 256 * MiB });
    for (const [key, frameText] of printed) {
      const frame = Number(frameText);
      const { array, shape } = await reopened.client.getArray<Float64Array>(key);
      const length = 1000 + (frame % 7) * 20000;
      expect(shape).toEqual([length]);
      expect(array.length).toBe(length);
      let mismatches = 0;
      for (let index = 0; index < length; index++) if (array[index] !== killValue(frame, index)) mismatches++;
      expect(mismatches, `frame ${frame} (key ${key})`).toBe(0);
    }
    // The put that was cut short left nothing half-written: at most one value more than printed.
    const { objects } = await reopened.client.usage();
    expect(objects - printed.length).toBeGreaterThanOrEqual(0);
    expect(objects - printed.length).toBeLessThanOrEqual(1);
  });

  it('reuses, emptied, the store of a keep: false run that was killed before it could remove it', async () => {
    const path = freshPath();
    const [command, args] = evalCommand(`
      const { createLmdbStore } = await import(${JSON.stringify(lmdbModule)});
      const store = await createLmdbStore({ path: ${JSON.stringify(path)} }).open({ sizeBytes: 1 << 20 });
      await store.client.put({ left: 'behind' });
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);
    `);
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) resolve();
      });
      child.on('exit', () => reject(new Error(`the child ended before it was ready: ${stderr}`)));
    });
    // While it lives, its store is its own.
    await expect(createLmdbStore({ path }).open({ sizeBytes: MiB })).rejects.toThrow(/in use by another run/);
    child.kill('SIGKILL');
    await exited;
    const store = await open(path);
    expect((await store.client.usage()).objects).toBe(0);
    await store.close();
    expect(existsSync(join(path, 'data.mdb'))).toBe(false);
  });

  it.skipIf(python === undefined)(
    'the Python reader of docs/lmdb.md, run as it is there, lists the keys and reads the frames back',
    async () => {
      const doc = readFileSync(new URL('../docs/lmdb.md', import.meta.url), 'utf8');
      const section = doc.slice(doc.indexOf('## From Python'));
      const blocks = [...section.matchAll(/```python\n([\s\S]*?)```/g)].map((match) => match[1]!);
      expect(blocks.length).toBe(2);
      const path = freshPath();
      const store = await createLmdbStore({ path, keep: true }).open({ sizeBytes: 64 * MiB });
      const frame = Float32Array.from({ length: 480 * 640 }, (_, index) => (index % 1000) * 0.5 - 3);
      const frameKey = await store.client.put(frame, { shape: [480, 640] });
      const big = await store.client.put(BigInt64Array.from([-(2n ** 62n), 5n, 2n ** 62n]));
      const valueKey = await store.client.put({ hello: 'python' });
      const small: string[] = [];
      for (let index = 0; index < 400; index++) small.push(await store.client.put(new Int16Array([index, -index])));
      const { key: unflushed } = await store.client.allocate('uint8', [2, 3]);
      await store.close();

      const script = join(scratch, 'reader.py');
      writeFileSync(script, blocks.join('\n'));
      const result = spawnSync(python!, [script, path], { encoding: 'utf8', timeout: 60_000 });
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const lines = new Map(
        result.stdout
          .trim()
          .split('\n')
          .map((line) => [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)]),
      );
      expect(lines.size).toBe(404);
      expect(lines.get(frameKey)).toBe('float32 [480, 640] [-3.0, -2.5, -2.0, -1.5]');
      expect(lines.get(big)).toBe(`int64 [3] [${-(2n ** 62n)}, 5, ${2n ** 62n}]`);
      expect(lines.get(valueKey)).toMatch(/^msgpack \d+ bytes$/);
      expect(lines.get(small[399]!)).toBe('int16 [2] [399, -399]');
      expect(lines.get(unflushed)).toBe('uint8 [2, 3] [0, 0, 0, 0]');
      // And the whole frame, bit for bit.
      const check = spawnSync(
        python!,
        [
          '-c',
          `${blocks[0]}\nimport sys\nframe = ImprovStore(sys.argv[1]).get(sys.argv[2])\nsys.stdout.buffer.write(frame.tobytes())`,
          path,
          frameKey,
        ],
        { maxBuffer: 64 * MiB },
      );
      expect(check.status).toBe(0);
      // Compared natively: a deep equal of 1.2 million bytes takes seconds.
      expect(Buffer.compare(check.stdout, Buffer.from(frame.buffer))).toBe(0);
    },
  );
});

// Said once, so a skipped Python test is explained in the output.
if (python === undefined) {
  console.warn('lmdb store tests: no python3 with numpy found (set PYTHON=…): the docs/lmdb.md Python test is skipped');
}
