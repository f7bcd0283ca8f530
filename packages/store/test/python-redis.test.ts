/**
 * The redis store shared with Python: this driver opens the store, and a Python process (numpy,
 * msgpack and redis-py in `/usr/bin/python3`) connects to it with `improv_ts.stores.redis`
 * (packages/python) from the descriptor alone. Arrays of every kind and shape and msgpack values go
 * both ways bit for bit, both clients write at once into a store that evicts, and afterwards the
 * store's counts agree with what is in it. Skipped when that Python lacks numpy, msgpack or redis.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { type TypedArray, type TypedArrayKind, typedArrayConstructors, typedArrayKinds } from '@improv/core';
import { afterEach, describe, expect, it } from 'vitest';
import { scripts } from '../src/_redis-scripts.ts';
import { connectStore, createRedisStore, type RedisOpenStore } from '../src/redis.ts';

const python = '/usr/bin/python3';
const pythonPath = fileURLToPath(new URL('../../python', import.meta.url));
const env = { ...process.env, PYTHONPATH: pythonPath };
const hasPython = spawnSync(python, ['-c', 'import numpy, msgpack, redis'], { env }).status === 0;
const suite = hasPython ? describe : describe.skip;
const MiB = 1024 * 1024;

/**
 * The Python side: `python -c PEER <mode> <descriptor>`, a JSON request on stdin, a JSON answer on
 * stdout. Arrays are described by dtype kind, shape and the SHA-256 of their bytes; decoded values as
 * JSON with tags for what JSON lacks.
 */
const PEER = `
import datetime, hashlib, json, os, sys, time
import numpy as np
from improv_ts.errors import ObjectNotFoundError
from improv_ts.stores.redis import connect

mode, descriptor = sys.argv[1], json.loads(sys.argv[2])
request = json.loads(sys.stdin.readline() or "null")

def described(array):
    return {"dtype": array.dtype.str, "shape": list(array.shape), "sha256": hashlib.sha256(array.tobytes()).hexdigest()}

def random_array(dtype, shape):
    count = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(os.urandom(count * np.dtype(dtype).itemsize), dtype).reshape(shape)

def tag(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        return value if np.isfinite(value) else {"float": str(value)}
    if isinstance(value, np.ndarray):
        return {"array": value.dtype.str, "hex": value.tobytes().hex()}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, datetime.datetime):
        return {"date": value.isoformat()}
    if isinstance(value, (set, frozenset)):
        return {"set": sorted((tag(item) for item in value), key=json.dumps)}
    if isinstance(value, dict):
        return {"dict": [[tag(k), tag(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [tag(item) for item in value]
    return {"other": repr(value)}

def counted(array):
    return array.nbytes + 16 + 8 * array.ndim

store = connect(descriptor)

if mode == "scripts":
    print(json.dumps({name: script.source for name, script in store._connection.scripts.items()}))
    sys.exit()
if mode == "put":
    arrays = []
    for dtype, shape in request["arrays"]:
        array = random_array(dtype, shape)
        arrays.append({"key": store.put(array), **described(array)})
    values = [
        {"n": 1, "list": [1, 2.5, "tö", None, True], "nested": {"deeper": [[], {}]}},
        [2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1, 2**32, -1, 2**32 + 1, -(2**40), 2**53 - 1],
        {"t": int(time.time() * 1000)},
        {"frames": [np.arange(4, dtype=np.int16), np.array([0.5, -1.0], np.float32), np.zeros(0, np.uint64)]},
        {3, "three"},
        b"raw bytes",
        datetime.datetime(2025, 3, 4, 5, 6, 7, 250000, tzinfo=datetime.timezone.utc),
        [float("inf"), float("-inf")],
    ]
    print(json.dumps({"owner": store.owner_id, "arrays": arrays, "values": [store.put(v) for v in values]}))
elif mode == "get":
    out = []
    for key in request:
        try:
            value = store.get(key)
            out.append({"array": described(value)} if isinstance(value, np.ndarray) else {"value": tag(value)})
        except ObjectNotFoundError as error:
            out.append({"error": str(error)})
    store.release()
    print(json.dumps(out))
elif mode == "churn":
    # Says it is ready, waits for the go, then puts, reads (and so holds, then releases) and deletes
    # while TypeScript and the other Python client do too.
    print("ready", flush=True)
    sys.stdin.readline()
    rng = np.random.default_rng(request["seed"])
    mine = []
    for step in range(request["count"]):
        array = random_array(["uint8", "float32", "float64", "int64"][step % 4], (int(rng.integers(1, 40_000)),))
        key = store.put(array)  # never full: at most a few values are unread or held at any time
        got = store.get(key)
        assert got.tobytes() == array.tobytes(), key
        store.release()
        mine.append({"key": key, "counted": counted(array), **described(array)})
        if step % 5 == 4:
            store.delete(mine[int(rng.integers(0, len(mine)))]["key"])
    # Last, values nobody reads: never evicted, so they are there when the counts are checked.
    for extra in range(3):
        array = random_array("int32", (1000 + extra,))
        mine.append({"key": store.put(array), "counted": counted(array), **described(array)})
    print(json.dumps(mine))
elif mode == "usage":
    import redis
    raw = redis.Redis(host=descriptor["host"], port=descriptor["port"], password=descriptor.get("password"))
    print(json.dumps({**store.usage(), "strings": sum(1 for _ in raw.scan_iter(match=descriptor["prefix"] + "v:*", count=1000))}))
store.close()
`;

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

interface Peer {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the Python side in `mode`. With `go`, it prints `ready` once connected (`ready` resolves, or
 * it has ended) and starts when `go` resolves.
 */
function runPeer(
  mode: string,
  descriptor: unknown,
  request: unknown,
  go?: Promise<void>,
): { ready: Promise<void>; done: Promise<Peer> } {
  const child = spawn(python, ['-c', PEER, mode, JSON.stringify(descriptor)], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  child.stdout.on('data', (chunk) => {
    stdout += String(chunk);
    if (stdout.startsWith('ready\n')) onReady();
  });
  child.stderr.on('data', (chunk) => {
    stderr += String(chunk);
  });
  child.stdin.write(`${JSON.stringify(request ?? null)}\n`);
  if (go === undefined) child.stdin.end();
  else void go.then(() => child.stdin.end('go\n'));
  const done = new Promise<Peer>((resolve) =>
    child.on('close', (code) => {
      onReady();
      resolve({ code, stdout, stderr });
    }),
  );
  cleanup.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
    await done;
  });
  return { ready, done };
}

/** The JSON the Python side printed, or a failure that shows what it wrote to stderr. */
async function peer<T>(mode: string, descriptor: unknown, request?: unknown): Promise<T> {
  return parsed<T>(await runPeer(mode, descriptor, request).done);
}

/** The last line the Python side printed, as JSON; a failure shows what it wrote to stderr. */
function parsed<T>({ code, stdout, stderr }: Peer): T {
  if (code !== 0) throw new Error(`the Python side ended with code ${code}:\n${stderr}${stdout}`);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

interface Described {
  dtype: string;
  shape: number[];
  sha256: string;
}

const numpyDtype: Record<TypedArrayKind, string> = {
  int8: '|i1',
  uint8: '|u1',
  uint8clamped: '|u1',
  int16: '<i2',
  uint16: '<u2',
  int32: '<i4',
  uint32: '<u4',
  float32: '<f4',
  float64: '<f8',
  bigint64: '<i8',
  biguint64: '<u8',
  bool: '|b1',
};
const kindOfNumpy: Record<string, TypedArrayKind> = Object.fromEntries(
  Object.entries(numpyDtype)
    .filter(([kind]) => kind !== 'uint8clamped')
    .map(([kind, dtype]) => [dtype.replace('|', '').replace('<', ''), kind as TypedArrayKind]),
);
const SHAPES = [[], [0], [1], [7], [3, 4], [2, 3, 4], [2, 1, 3, 1, 2]];

function sha256(array: ArrayBufferView): string {
  return createHash('sha256')
    .update(new Uint8Array(array.buffer, array.byteOffset, array.byteLength))
    .digest('hex');
}

function randomArray(kind: TypedArrayKind, length: number): TypedArray {
  const ctor = typedArrayConstructors[typedArrayKinds.indexOf(kind)]!;
  const array = new ctor(length);
  // Every bit pattern: NaN payloads, negative zeros, extreme integers.
  new Uint8Array(array.buffer).set(randomBytes(array.byteLength));
  return array;
}

async function open(sizeBytes = 64 * MiB, eviction: 'none' | 'oldest' = 'none'): Promise<RedisOpenStore> {
  // With server.bind the server wants a password, which the Python side gets from the descriptor.
  const store = await createRedisStore({ server: { bind: '127.0.0.1' } }).open({ sizeBytes, eviction });
  cleanup.push(() => store.close());
  expect(store.descriptor.password).toBeTruthy();
  return store;
}

suite('the redis store with a Python client (improv_ts.stores.redis)', () => {
  it('the Python client runs the very Lua scripts of this driver, as the store published them', async () => {
    const store = await open();
    const fromPython = await peer<Record<string, string>>('scripts', store.descriptor);
    expect(Object.keys(fromPython).sort()).toEqual(Object.keys(scripts).sort());
    for (const [name, script] of Object.entries(scripts)) expect(fromPython[name], name).toBe(script.source);
  });

  it('reads what Python stored bit for bit: every dtype and shape, 4 MiB, msgpack values', {
    timeout: 60_000,
  }, async () => {
    const store = await open();
    const dtypes = Object.keys(kindOfNumpy);
    const arrays = [...dtypes.flatMap((dtype) => SHAPES.map((shape) => [dtype, shape])), ['f4', [1024, 1024]]];
    const stored = await peer<{ owner: number; arrays: (Described & { key: string })[]; values: string[] }>(
      'put',
      store.descriptor,
      { arrays },
    );
    expect(stored.owner).not.toBe(store.client.ownerId);
    expect(stored.arrays).toHaveLength(arrays.length);
    for (const { key, dtype, shape, sha256: hash } of stored.arrays) {
      const kind = kindOfNumpy[dtype.replace(/^[<|]/, '')]!;
      const read = await store.client.getArray(key);
      expect({ dtype: read.dtype, shape: read.shape, sha256: sha256(read.array) }, key).toEqual({
        dtype: kind,
        shape,
        sha256: hash,
      });
      expect(read.array).toBeInstanceOf(typedArrayConstructors[typedArrayKinds.indexOf(kind)]!);
      expect(await store.client.info(key)).toEqual({
        key,
        kind: 'array',
        dtype: kind,
        shape,
        byteLength: read.array.byteLength,
      });
    }
    expect(stored.arrays.at(-1)!.shape).toEqual([1024, 1024]);

    const values = await Promise.all(stored.values.map((key) => store.client.get(key)));
    // Python writes an int of 2**32 or more as a 64-bit integer: a number when safe, a bigint beyond.
    const { t } = values.splice(2, 1)[0] as { t: number };
    expect(typeof t).toBe('number');
    expect(Date.now() - t).toBeGreaterThanOrEqual(0);
    expect(Date.now() - t).toBeLessThan(60_000);
    expect(values).toEqual([
      { n: 1, list: [1, 2.5, 'tö', null, true], nested: { deeper: [[], {}] } },
      [2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n, 2 ** 32, -1, 2 ** 32 + 1, -(2 ** 40), 2 ** 53 - 1],
      { frames: [Int16Array.of(0, 1, 2, 3), Float32Array.of(0.5, -1), new BigUint64Array(0)] },
      new Set([3, 'three']),
      new Uint8Array(Buffer.from('raw bytes')),
      new Date(Date.UTC(2025, 2, 4, 5, 6, 7, 250)),
      [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY],
    ]);
    for (const key of stored.values) expect((await store.client.info(key)).kind).toBe('value');
    await store.client.release();
  });

  it('Python reads what this driver stored bit for bit: every kind and shape, 4 MiB, msgpack values, an unflushed allocation', {
    timeout: 60_000,
  }, async () => {
    const store = await open();
    const client = store.client;
    const expected: Described[] = [];
    const keys: string[] = [];
    for (const kind of typedArrayKinds) {
      for (const shape of [...SHAPES, ...(kind === 'float32' ? [[1024, 1024]] : [])]) {
        const array = randomArray(
          kind,
          shape.reduce((a, b) => a * b, 1),
        );
        if (kind === 'bool') {
          // A mask for Python: TypeScript writes numpy's bool through allocate.
          const mask = await client.allocate('bool', shape);
          mask.array.set(array as Uint8Array);
          keys.push(mask.key);
        } else keys.push(await client.put(array, { shape }));
        expected.push({ dtype: numpyDtype[kind], shape, sha256: sha256(array) });
      }
    }
    await client.flush(); // the masks' contents (the allocation below stays unflushed)
    const now = Date.now();
    const values = [
      { n: 1, text: 'tö', list: [null, true, 2.5], nested: { deeper: [[], {}] } },
      [2n ** 53n + 1n, -(2n ** 63n), 2n ** 64n - 1n, 7n, 2 ** 40, now, -(2 ** 40), 2 ** 32 + 1],
      new Map<unknown, unknown>([
        [1, 'one'],
        ['two', [2]],
      ]),
      new Set(['a', 3]),
      { frames: [Int16Array.of(-1, 2), Float64Array.of(0.25), Uint8ClampedArray.of(255)] },
      new Date(Date.UTC(2025, 2, 4, 5, 6, 7, 250)),
      new Uint8Array([0, 255, 7]).buffer,
    ];
    const valueKeys = await Promise.all(values.map((value) => client.put(value)));
    const allocation = await client.allocate('int32', [2, 3]);
    allocation.array.set([1, 2, 3, 4, 5, 6]);

    const before = await peer<({ array: Described } | { value: unknown })[]>('get', store.descriptor, [
      ...keys,
      ...valueKeys,
      allocation.key,
    ]);
    expect(before.slice(0, keys.length)).toEqual(expected.map((array) => ({ array })));
    expect(before.slice(keys.length, -1)).toEqual([
      {
        value: {
          dict: [
            ['n', { int: '1' }],
            ['text', 'tö'],
            ['list', [null, true, 2.5]],
            ['nested', { dict: [['deeper', [[], { dict: [] }]]] }],
          ],
        },
      },
      {
        value: [
          { int: String(2n ** 53n + 1n) },
          { int: String(-(2n ** 63n)) },
          { int: String(2n ** 64n - 1n) },
          { int: '7' },
          // Numbers that are integers beyond 32 bits reach Python as ints, not floats.
          { int: String(2 ** 40) },
          { int: String(now) },
          { int: String(-(2 ** 40)) },
          { int: String(2 ** 32 + 1) },
        ],
      },
      {
        value: {
          dict: [
            [{ int: '1' }, 'one'],
            ['two', [{ int: '2' }]],
          ],
        },
      },
      { value: { set: ['a', { int: '3' }] } },
      {
        value: {
          dict: [
            [
              'frames',
              [
                { array: '<i2', hex: 'ffff0200' },
                { array: '<f8', hex: Buffer.from(Float64Array.of(0.25).buffer).toString('hex') },
                { array: '|u1', hex: 'ff' },
              ],
            ],
          ],
        },
      },
      { value: { date: '2025-03-04T05:06:07.250000+00:00' } },
      { value: { bytes: '00ff07' } },
    ]);
    // Not flushed yet: readers elsewhere see zeros of its shape, as TypeScript readers do.
    const zeros = new Int32Array(6);
    expect(before.at(-1)).toEqual({ array: { dtype: '<i4', shape: [2, 3], sha256: sha256(zeros) } });
    await client.flush();
    const after = await peer<{ array: Described }[]>('get', store.descriptor, [allocation.key]);
    expect(after).toEqual([
      { array: { dtype: '<i4', shape: [2, 3], sha256: sha256(Int32Array.of(1, 2, 3, 4, 5, 6)) } },
    ]);
    // Python's holds ended with its release(); nothing was counted twice.
    const usage = await client.usage();
    expect(usage.objects).toBe(keys.length + valueKeys.length + 1);
  });

  it('Python and TypeScript clients writing at once into a store that evicts: its counts agree with its contents', {
    timeout: 120_000,
  }, async () => {
    const store = await open(4 * MiB, 'oldest');
    const second = await connectStore(store.descriptor);
    cleanup.push(() => second.close());
    let start!: () => void;
    const go = new Promise<void>((resolve) => {
      start = resolve;
    });
    const count = 300;
    const pythons = [1, 2].map((seed) => runPeer('churn', store.descriptor, { seed, count }, go));
    // Both Python clients are connected and waiting: all four start writing together.
    await Promise.all(pythons.map(({ ready }) => ready));

    const kinds = ['uint8', 'float32', 'float64', 'bigint64'] as const;
    const mine: { key: string; counted: number; sha256: string; client: typeof second }[] = [];
    const churn = async (client: typeof second, offset: number) => {
      const own: typeof mine = [];
      for (let step = 0; step < count; step++) {
        const array = randomArray(kinds[(step + offset) % 4]!, 1 + ((step * 7919 + offset) % 40_000));
        // Never full: at most a few values are unread or held at any time, any other may be evicted.
        const key = await client.put(array);
        expect(sha256(await client.get<TypedArray>(key))).toBe(sha256(array));
        await client.release();
        own.push({ key, counted: array.byteLength + 16 + 8, sha256: sha256(array), client });
        if (step % 5 === 4) await client.delete(own[(step * 31) % own.length]!.key);
      }
      // Last, values nobody reads: never evicted, so they are there when the counts are checked.
      for (let extra = 0; extra < 3; extra++) {
        const array = randomArray('int32', 1000 + extra);
        own.push({ key: await client.put(array), counted: array.byteLength + 24, sha256: sha256(array), client });
      }
      mine.push(...own);
    };
    start();
    await Promise.all([churn(store.client, 0), churn(second, 1)]);
    const python = (await Promise.all(pythons.map(({ done }) => done))).map((result) =>
      parsed<{ key: string; counted: number; sha256: string; dtype: string; shape: number[] }[]>(result),
    );

    // Every key ever stored, by both languages: which are still there, and what they count.
    const all = [...mine, ...python.flat()];
    expect(new Set(all.map(({ key }) => key)).size).toBe(all.length);
    const live: typeof all = [];
    for (const entry of all) if (await store.client.has(entry.key)) live.push(entry);
    // Each client's last values at least (unread values are never evicted).
    for (const keys of [
      ...python,
      mine.filter(({ client }) => client === store.client),
      mine.filter(({ client }) => client === second),
    ]) {
      for (const { key } of keys.slice(-3)) expect(live.map((entry) => entry.key)).toContain(key);
    }
    expect(live.length).toBeLessThan(all.length); // the store is far smaller than what went through it
    const usage = await store.client.usage();
    expect(usage).toEqual({
      usedBytes: live.reduce((sum, { counted }) => sum + counted, 0),
      capacityBytes: 4 * MiB,
      objects: live.length,
    });
    expect(usage.usedBytes).toBeLessThanOrEqual(4 * MiB);
    // Python sees the same counts, and exactly one value string per value is on the server.
    expect(await peer('usage', store.descriptor)).toEqual({
      used_bytes: usage.usedBytes,
      capacity_bytes: usage.capacityBytes,
      objects: usage.objects,
      strings: usage.objects,
    });
    // What is left reads bit for bit on the other side.
    for (const entry of live) {
      if ('client' in entry) continue;
      expect(sha256(await store.client.get<TypedArray>(entry.key)), entry.key).toBe(entry.sha256);
    }
    const fromTs = live.filter((entry) => 'client' in entry);
    const read = await peer<{ array: Described }[]>(
      'get',
      store.descriptor,
      fromTs.map(({ key }) => key),
    );
    expect(read.map(({ array }) => array.sha256)).toEqual(fromTs.map(({ sha256 }) => sha256));
    await store.client.release();
  });
});
