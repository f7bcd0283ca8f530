/**
 * The lmdb store shared with Python actors: a Python process (`/usr/bin/python3` with numpy and
 * msgpack, and `improv_ts` from packages/python) connects to a store this process opened, with the
 * LMDB that lmdb-js ships compiled on first use (`improv_ts/stores/_liblmdb.py`), while the store
 * stays open here. Arrays of every dtype and shape and msgpack values go both ways and come back
 * bit-exact with their dtype and shape; both sides write at the same time; holds and messages in
 * flight that Python records keep TypeScript's eviction away; the counters agree at the end.
 *
 * The Python side is a small server (`PYTHON_PEER` below) answering JSON lines on stdin.
 */
import { Buffer } from 'node:buffer';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ObjectNotFoundError,
  type TypedArray,
  type TypedArrayKind,
  typedArrayConstructors,
  typedArrayKinds,
} from '@improv/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLmdbStore, type LmdbOpenStore } from '../src/lmdb.ts';

const python = '/usr/bin/python3';
const pythonPackage = fileURLToPath(new URL('../../python', import.meta.url));
const hasModules = spawnSync(python, ['-c', 'import numpy, msgpack'], { encoding: 'utf8' }).status === 0;
const hasCompiler = ['cc', 'gcc'].some((name) => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0);
const suite = hasModules && hasCompiler ? describe : describe.skip;
if (!hasModules || !hasCompiler) {
  console.warn(
    `python-lmdb tests skipped: ${hasModules ? '' : `${python} lacks numpy or msgpack; `}${hasCompiler ? '' : 'no C compiler (cc or gcc) to build LMDB'}`,
  );
}

const MiB = 1024 * 1024;
const KiB = 1024;
const scratch = mkdtempSync(join(tmpdir(), 'improv-python-lmdb-test-'));
let stores = 0;
const freshPath = () => join(scratch, `store-${++stores}`);

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * The Python peer: connects to the store of the descriptor in argv and answers one JSON line per
 * request. Arrays are built from `pattern(bytes, seed)`, the same bytes `pattern` below makes, so
 * either side checks the other's arrays byte for byte.
 */
const PYTHON_PEER = String.raw`
import hashlib, json, sys, traceback
import numpy as np
from improv_ts import _codec
from improv_ts.stores.lmdb import connect

DTYPES = {kind: _codec.DTYPES[code] for code, kind in enumerate(_codec.KINDS) if kind}

def pattern(nbytes, seed):
    return ((np.arange(nbytes, dtype=np.uint64) * 131 + seed * 17 + 7) & 255).astype(np.uint8)

def make(kind, shape, seed):
    dtype = np.dtype(DTYPES[kind])
    count = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(pattern(count * dtype.itemsize, seed).tobytes(), dtype).reshape(shape)

# The msgpack value each side stores, as the other side must decode it.
PYTHON_VALUE = {
    "text": "héllo ✓", "ints": [0, -1, 127, -(2**31), 2**31 - 1], "float": 2.5, "none": None, "yes": True,
    "big": 2**63 - 1, "neg": -(2**63), "nested": {"deep": [[1, [2]], {}]}, "bytes": b"\x00\xff",
    "frame": np.array([1.5, -0.0, 3.25], np.float32), "set": {1, 2, 3},
}
TS_VALUE = {
    "a": 1, "list": [1, "two", None, True], "set": {1, 2}, "map": {"k": 1},
    "big": 2**63 - 1, "neg": -(2**63), "nested": {"deep": [[]]},
}

client = connect(json.loads(sys.argv[1]))
for line in sys.stdin:
    request = json.loads(line)
    op = request["op"]
    try:
        if op == "client":
            reply = {"clientId": client.client_id}
        elif op == "put_cases":
            reply = {"keys": [client.put(make(c["kind"], c["shape"], c["seed"])) for c in request["cases"]]}
        elif op == "put_value":
            reply = {"key": client.put(PYTHON_VALUE)}
        elif op == "check_cases":
            results = []
            for c in request["cases"]:
                value = client.get(c["key"])
                expected = make("uint8" if c["kind"] == "uint8clamped" else c["kind"], c["shape"], c["seed"])
                if c.get("zeros"):
                    expected = np.zeros_like(expected)
                results.append({
                    "dtype": str(value.dtype), "shape": list(value.shape), "info": client.info(c["key"]),
                    "same": value.dtype == expected.dtype and value.shape == expected.shape and value.tobytes() == expected.tobytes(),
                    "sha256": hashlib.sha256(value.tobytes()).hexdigest(),
                })
            client.release()
            reply = {"results": results}
        elif op == "check_value":
            value = client.get(request["key"])
            value["set"] = sorted(value["set"])
            expected = dict(TS_VALUE, set=[1, 2])
            f64, date = value.pop("f64"), value.pop("date")
            reply = {
                "same": value == expected,
                "f64": [str(f64.dtype), f64.tobytes().hex()],
                "date": date.isoformat(),
                "got": repr(value),
            }
        elif op == "burst":
            # Puts an array and a value per round; every 10th round deletes the round's array again.
            arrays, values, deleted = [], [], []
            for index in range(request["rounds"]):
                key = client.put(make("float32", [16, 16], index))
                values.append(client.put({"round": index, "who": "python"}))
                if index % 10 == 0:
                    client.delete(key)
                    deleted.append(key)
                else:
                    arrays.append([index, key])
            client.release()
            reply = {"arrays": arrays, "values": values, "deleted": deleted}
        elif op == "get":
            client.get(request["key"])
            reply = {}
        elif op == "track":
            client.track(request["keys"], request["delta"])
            reply = {}
        elif op == "release":
            client.release()
            reply = {}
        elif op == "usage":
            reply = client.usage()
        else:
            reply = {"error": "unknown op " + op}
    except Exception as error:
        reply = {"error": type(error).__name__, "message": str(error), "trace": traceback.format_exc()}
    print(json.dumps(reply), flush=True)
client.close()
`;

/** The bytes the Python peer's `pattern(nbytes, seed)` makes. */
function pattern(byteLength: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(byteLength);
  for (let index = 0; index < byteLength; index++) bytes[index] = (index * 131 + seed * 17 + 7) & 255;
  return bytes;
}

function make(kind: TypedArrayKind, shape: readonly number[], seed: number): TypedArray {
  const ctor = typedArrayConstructors[typedArrayKinds.indexOf(kind)]!;
  const length = shape.reduce((product, size) => product * size, 1);
  return new ctor(pattern(length * ctor.BYTES_PER_ELEMENT, seed).buffer, 0, length);
}

const bytesOf = (array: TypedArray) => Buffer.from(array.buffer, array.byteOffset, array.byteLength);
const sha256 = (array: TypedArray) => createHash('sha256').update(bytesOf(array)).digest('hex');

/** Kinds a numpy array can be (uint8clamped is TypeScript's only: numpy stores it as uint8). */
const numpyKinds = typedArrayKinds.filter((kind) => kind !== 'uint8clamped');
const shapes: number[][] = [[], [0], [1], [5], [2, 3], [2, 3, 4], [3, 0, 2], [1, 1, 1, 1, 7]];

interface Case {
  kind: TypedArrayKind;
  shape: number[];
  seed: number;
}

function everyCase(kinds: readonly TypedArrayKind[]): Case[] {
  const cases: Case[] = [];
  for (const kind of kinds) for (const shape of shapes) cases.push({ kind, shape, seed: cases.length });
  // 4 MiB each.
  cases.push({ kind: 'float32', shape: [1024, 1024], seed: 1 });
  cases.push({ kind: 'uint8', shape: [4 * MiB], seed: 2 });
  cases.push({ kind: 'bigint64', shape: [512, 1024], seed: 3 });
  return cases;
}

/** A running Python peer. */
class Peer {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffered = '';
  private output = '';
  private readonly lines: string[] = [];
  private waiting: ((line: string | undefined) => void) | undefined;
  private ended = false;
  readonly exited: Promise<number | null>;

  constructor(descriptor: unknown) {
    this.child = spawn(python, ['-c', PYTHON_PEER, JSON.stringify(descriptor)], {
      env: { ...process.env, PYTHONPATH: pythonPackage },
    });
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.buffered += String(chunk);
      let newline = this.buffered.indexOf('\n');
      while (newline >= 0) {
        this.lines.push(this.buffered.slice(0, newline));
        this.buffered = this.buffered.slice(newline + 1);
        newline = this.buffered.indexOf('\n');
      }
      this.wake();
    });
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.output += String(chunk);
    });
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code) => {
        this.ended = true;
        this.wake();
        resolve(code);
      }),
    );
  }

  private wake(): void {
    if (this.waiting === undefined) return;
    if (this.lines.length > 0) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve(this.lines.shift());
    } else if (this.ended) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve(undefined);
    }
  }

  /** Sends a request and resolves to the reply; fails with the peer's stderr when it ends instead. */
  async ask<T = Record<string, unknown>>(request: Record<string, unknown>): Promise<T> {
    this.child.stdin.write(`${JSON.stringify(request)}\n`);
    const line = await new Promise<string | undefined>((resolve) => {
      this.waiting = resolve;
      this.wake();
    });
    if (line === undefined) throw new Error(`the Python peer ended:\n${this.output}`);
    const reply = JSON.parse(line) as Record<string, unknown>;
    if ('error' in reply)
      throw new Error(`Python: ${String(reply.error)}: ${String(reply.message)}\n${String(reply.trace)}`);
    return reply as T;
  }

  async close(): Promise<number | null> {
    this.child.stdin.end();
    const code = await this.exited;
    if (code !== 0) throw new Error(`the Python peer ended with code ${code}:\n${this.output}`);
    return code;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

suite('the lmdb store shared with a Python process', () => {
  const opened: LmdbOpenStore[] = [];
  const peers: Peer[] = [];
  const open = async (options: { sizeBytes?: number; eviction?: 'none' | 'oldest' } = {}) => {
    const store = await createLmdbStore({ path: freshPath() }).open({
      sizeBytes: options.sizeBytes ?? 64 * MiB,
      ...(options.eviction === undefined ? {} : { eviction: options.eviction }),
    });
    opened.push(store);
    return store;
  };
  const peer = (store: LmdbOpenStore) => {
    const started = new Peer(JSON.parse(JSON.stringify(store.descriptor)));
    peers.push(started);
    return started;
  };

  beforeAll(async () => {
    // The descriptor says where lmdb-js is; the first Python client builds its LMDB (once per machine).
    const store = await open({ sizeBytes: MiB });
    const lmdbPackage = store.descriptor.lmdbPackage!;
    expect(JSON.parse(readFileSync(join(lmdbPackage, 'package.json'), 'utf8')).name).toBe('lmdb');
    expect(existsSync(join(lmdbPackage, 'dependencies/lmdb/libraries/liblmdb/mdb.c'))).toBe(true);
    const build = spawnSync(
      python,
      ['-c', 'import sys; from improv_ts.stores import _liblmdb; _liblmdb.load(sys.argv[1])', lmdbPackage],
      { env: { ...process.env, PYTHONPATH: pythonPackage }, encoding: 'utf8', timeout: 170_000 },
    );
    expect(build.stderr).toBe('');
    expect(build.status).toBe(0);
  }, 180_000);

  afterEach(async () => {
    for (const started of peers.splice(0)) started.kill();
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  it('Python puts arrays of every dtype and shape; TypeScript reads them back bit-exact with their dtype and shape', async () => {
    const store = await open();
    const python = peer(store);
    const cases = everyCase(numpyKinds);
    const { keys } = await python.ask<{ keys: string[] }>({ op: 'put_cases', cases });
    expect(new Set(keys).size).toBe(cases.length);
    for (const [index, { kind, shape, seed }] of cases.entries()) {
      const key = keys[index]!;
      expect(store.client.isKey(key)).toBe(true);
      const back = await store.client.getArray(key);
      expect([kind, back.dtype, back.shape]).toEqual([kind, kind, shape]);
      expect(Buffer.compare(bytesOf(back.array), bytesOf(make(kind, shape, seed)))).toBe(0);
      const expectedBytes = make(kind, shape, seed).byteLength;
      expect(await store.client.info(key)).toEqual({
        key,
        kind: 'array',
        dtype: kind,
        shape,
        byteLength: expectedBytes,
      });
    }
    await python.close();
  });

  it('TypeScript puts arrays of every dtype and shape (and an unflushed allocation); Python reads them bit-exact', async () => {
    const store = await open();
    const cases: (Case & { key: string; zeros?: boolean })[] = [];
    for (const item of everyCase(typedArrayKinds)) {
      const array = make(item.kind, item.shape, item.seed);
      if (item.kind === 'bool') {
        // A mask for Python: TypeScript writes numpy's bool through allocate.
        const mask = await store.client.allocate('bool', item.shape);
        mask.array.set(array as Uint8Array);
        cases.push({ ...item, key: mask.key });
        continue;
      }
      const key = await store.client.put(array, { shape: item.shape });
      cases.push({ ...item, key });
    }
    await store.client.flush();
    const { key: allocated } = await store.client.allocate('float64', [3, 2]);
    cases.push({ kind: 'float64', shape: [3, 2], seed: 0, key: allocated, zeros: true });
    const python = peer(store);
    const { results } = await python.ask<{
      results: { dtype: string; shape: number[]; info: unknown; same: boolean; sha256: string }[];
    }>({ op: 'check_cases', cases });
    const numpyNames: Record<string, string> = {
      int8: 'int8',
      uint8: 'uint8',
      uint8clamped: 'uint8',
      int16: 'int16',
      uint16: 'uint16',
      int32: 'int32',
      uint32: 'uint32',
      float32: 'float32',
      float64: 'float64',
      bigint64: 'int64',
      biguint64: 'uint64',
      bool: 'bool',
    };
    for (const [index, { kind, shape, seed, zeros }] of cases.entries()) {
      const result = results[index]!;
      const expected = zeros ? new Float64Array(6) : make(kind, shape, seed);
      expect(result).toEqual({
        dtype: numpyNames[kind],
        shape,
        info: { dtype: kind, shape, bytes: expected.byteLength },
        same: true,
        sha256: sha256(expected),
      });
    }
    await python.close();
  });

  it('msgpack values go both ways: nested data, typed arrays inside, sets, maps, 64-bit integers, dates', async () => {
    const store = await open();
    const python = peer(store);
    const { key } = await python.ask<{ key: string }>({ op: 'put_value' });
    expect(await store.client.get(key)).toEqual({
      text: 'héllo ✓',
      ints: [0, -1, 127, -(2 ** 31), 2 ** 31 - 1],
      float: 2.5,
      none: null,
      yes: true,
      big: 2n ** 63n - 1n,
      neg: -(2n ** 63n),
      nested: { deep: [[1, [2]], {}] },
      bytes: new Uint8Array([0, 255]),
      frame: new Float32Array([1.5, -0, 3.25]),
      set: new Set([1, 2, 3]),
    });
    expect((await store.client.info(key)).kind).toBe('value');

    const f64 = new Float64Array([0.5, -0, Number.NaN]);
    const tsKey = await store.client.put({
      a: 1,
      list: [1, 'two', null, true],
      set: new Set([1, 2]),
      map: new Map([['k', 1]]),
      big: 2n ** 63n - 1n,
      neg: -(2n ** 63n),
      nested: { deep: [[]] },
      f64,
      date: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 678)),
    });
    const seen = await python.ask<{ same: boolean; f64: [string, string]; date: string; got: string }>({
      op: 'check_value',
      key: tsKey,
    });
    expect(seen.same, seen.got).toBe(true);
    expect(seen.f64).toEqual(['float64', bytesOf(f64).toString('hex')]);
    expect(seen.date).toBe('2025-01-02T03:04:05.678000+00:00');
    await python.close();
  });

  it('TypeScript and Python write at the same time: keys never collide, every value reads back, usage agrees', async () => {
    const store = await open();
    const python = peer(store);
    const { clientId } = await python.ask<{ clientId: number }>({ op: 'client' });
    expect(clientId).not.toBe(store.client.clientId);
    const rounds = 200;
    // Python's burst runs while this process puts and deletes the same way (its rounds 1000 on).
    const burst = python.ask<{ arrays: [number, string][]; values: string[]; deleted: string[] }>({
      op: 'burst',
      rounds,
    });
    const tsArrays: [number, string][] = [];
    const tsValues: string[] = [];
    const tsDeleted: string[] = [];
    for (let round = 1000; round < 1000 + rounds; round++) {
      const key = await store.client.put(make('float32', [16, 16], round), { shape: [16, 16] });
      tsValues.push(await store.client.put({ round, who: 'typescript' }));
      if (round % 10 === 0) {
        expect(await store.client.delete(key)).toBe(true);
        tsDeleted.push(key);
      } else tsArrays.push([round, key]);
    }
    const { arrays, values, deleted } = await burst;
    expect([arrays.length, values.length, deleted.length]).toEqual([rounds - rounds / 10, rounds, rounds / 10]);
    const kept = [...arrays.map(([, key]) => key), ...values, ...tsArrays.map(([, key]) => key), ...tsValues];
    const gone = [...deleted, ...tsDeleted];
    expect(new Set([...kept, ...gone]).size).toBe(kept.length + gone.length);

    // Every value is there, bit-exact, and the counters are the sum of what both sides stored.
    let used = 0;
    for (const key of kept) {
      const info = await store.client.info(key);
      used += info.byteLength + 16 + 8 * (info.kind === 'array' ? info.shape.length : 0) + 64;
    }
    for (const [round, key] of arrays) {
      const back = await store.client.getArray(key);
      expect([back.dtype, back.shape]).toEqual(['float32', [16, 16]]);
      expect(Buffer.compare(bytesOf(back.array), bytesOf(make('float32', [16, 16], round)))).toBe(0);
    }
    for (const [round, key] of values.entries()) expect(await store.client.get(key)).toEqual({ round, who: 'python' });
    for (const key of gone) await expect(store.client.get(key)).rejects.toThrow(ObjectNotFoundError);
    const { results } = await python.ask<{ results: { same: boolean }[] }>({
      op: 'check_cases',
      cases: tsArrays.map(([seed, key]) => ({ kind: 'float32', shape: [16, 16], seed, key })),
    });
    expect(results.filter((result) => result.same).length).toBe(tsArrays.length);
    await store.client.release();
    const usage = await store.client.usage();
    expect(usage).toEqual({ usedBytes: used, capacityBytes: 64 * MiB, objects: kept.length });
    expect(await python.ask({ op: 'usage' })).toEqual({
      used_bytes: used,
      capacity_bytes: 64 * MiB,
      objects: kept.length,
    });
    await python.close();
  });

  it("Python's holds and messages in flight keep TypeScript's eviction away; released, the values go", async () => {
    // 6 blocks of 8 KiB (8280 bytes charged each) fill 64 KiB to 76 %; the 8th put crosses 95 %.
    const store = await open({ sizeBytes: 64 * KiB, eviction: 'oldest' });
    const block = (seed: number) => make('uint8', [8 * KiB], seed);
    const keys: string[] = [];
    for (let index = 0; index < 6; index++) keys.push(await store.client.put(block(index)));
    for (const key of keys) await store.client.getArray(key);
    await store.client.release();
    const python = peer(store);
    await python.ask({ op: 'get', key: keys[0] });
    await python.ask({ op: 'track', keys: [keys[1]], delta: 1 });
    await store.client.put(block(6));
    await store.client.put(block(7)); // evicts: not keys[0] (held) nor keys[1] (in flight), but keys[2] and keys[3]
    expect(await store.client.has(keys[0]!)).toBe(true);
    expect(await store.client.has(keys[1]!)).toBe(true);
    expect(await store.client.has(keys[2]!)).toBe(false);
    expect(await store.client.has(keys[3]!)).toBe(false);
    await expect(store.client.get(keys[2]!)).rejects.toThrow(/was evicted/);

    await python.ask({ op: 'release' });
    await python.ask({ op: 'track', keys: [keys[1]], delta: -1 });
    await store.client.put(block(8));
    await store.client.put(block(9)); // evicts again: now keys[0] and keys[1] are the oldest that may go
    expect(await store.client.has(keys[0]!)).toBe(false);
    expect(await store.client.has(keys[1]!)).toBe(false);
    await expect(store.client.getArray(keys[0]!)).rejects.toThrow(/was evicted/);
    const usage = await store.client.usage();
    expect(await python.ask({ op: 'usage' })).toEqual({
      used_bytes: usage.usedBytes,
      capacity_bytes: usage.capacityBytes,
      objects: usage.objects,
    });
    expect(usage.objects).toBe(6);
    await python.close();
  });
});
