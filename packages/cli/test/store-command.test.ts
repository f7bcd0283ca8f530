import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLmdbStore } from '@improv/store/lmdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { npyFile, runStoreCommand, storeHelp } from '../src/store-command.ts';

const MiB = 1024 * 1024;
const scratch = mkdtempSync(join(tmpdir(), 'improv-store-command-'));
const storePath = join(scratch, 'run.lmdb');

/** The first python3 with numpy, or undefined (the .npy round trip is then skipped). */
function findPython(): string | undefined {
  for (const candidate of [process.env.PYTHON, 'python3', '/usr/bin/python3']) {
    if (candidate === undefined || candidate === '') continue;
    if (spawnSync(candidate, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0) return candidate;
  }
  return undefined;
}
const python = findPython();

async function run(...args: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runStoreCommand(args, {
    stdout: (text) => stdout.push(text),
    stderr: (text) => stderr.push(text),
  });
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

const keys: Record<string, string> = {};
const frame = Float32Array.from({ length: 6 * 8 }, (_, index) => index / 4 - 2);

beforeAll(async () => {
  const store = await createLmdbStore({ path: storePath, keep: true }).open({ sizeBytes: 16 * MiB });
  const client = store.client;
  keys.frame = await client.put(frame, { shape: [6, 8] });
  keys.int8 = await client.put(new Int8Array([-128, -1, 0, 1, 127]));
  keys.clamped = await client.put(new Uint8ClampedArray([0, 128, 255]), { shape: [3, 1] });
  keys.big = await client.put(new BigInt64Array([-(2n ** 63n), 0n, 2n ** 63n - 1n]));
  keys.ubig = await client.put(new BigUint64Array([2n ** 64n - 1n]));
  keys.scalar = await client.put(new Float64Array([Math.PI]), { shape: [] });
  keys.long = await client.put(Uint16Array.from({ length: 1000 }, (_, index) => index));
  keys.value = await client.put({
    name: 'run 7',
    samples: new Float32Array([0.5, 1.5]),
    big: 2n ** 62n,
    tags: new Set(['a']),
  });
  keys.ttl = await client.put('soon gone', { ttlMs: 3_600_000 });
  const { key } = await client.allocate('int32', [2, 2]);
  keys.unflushed = key;
  await store.close(); // flushes the allocation (still zeros)
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

describe('improv store', () => {
  it('prints its help with --help, and on no arguments (as a usage error)', async () => {
    expect(await run('--help')).toEqual({ code: 0, stdout: storeHelp, stderr: '' });
    expect((await run('ls', '--help')).code).toBe(0);
    const bare = await run();
    expect(bare.code).toBe(2);
    expect(bare.stderr).toBe(storeHelp);
    expect(storeHelp).toMatch(/improv store ls/);
    expect(storeHelp).toMatch(/\.npy/);
  });

  it('ls lists every value: key, dtype or "value", shape and size — and changes nothing in the store', async () => {
    const before = digest(join(storePath, 'data.mdb'));
    const { code, stdout, stderr } = await run('ls', storePath);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines[0]).toMatch(
      new RegExp(`^${storePath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 10 values, .* of 16\\.00 MiB used$`),
    );
    expect(lines[1]).toMatch(/^KEY\s+DTYPE\s+SHAPE\s+SIZE$/);
    const row = (key: string) => lines.find((line) => line.startsWith(`${key} `)) ?? '';
    expect(row(keys.frame!)).toMatch(/\sfloat32\s+\[6, 8\]\s+192 B$/);
    expect(row(keys.int8!)).toMatch(/\sint8\s+\[5\]\s+5 B$/);
    expect(row(keys.clamped!)).toMatch(/\suint8clamped\s+\[3, 1\]\s+3 B$/);
    expect(row(keys.scalar!)).toMatch(/\sfloat64\s+\[\]\s+8 B$/);
    expect(row(keys.long!)).toMatch(/\suint16\s+\[1000\]\s+1\.95 KiB$/);
    expect(row(keys.value!)).toMatch(/\svalue\s+\d+ B$/);
    expect(row(keys.ttl!)).toMatch(/\svalue\s+\d+ B\s+expires \d{4}-/);
    expect(lines).toHaveLength(12);
    expect(digest(join(storePath, 'data.mdb'))).toBe(before);
  });

  it('get prints an array (dtype, shape, first elements) and a msgpack value', async () => {
    const array = await run('get', storePath, keys.long!);
    expect(array.code).toBe(0);
    expect(array.stdout.split('\n')).toEqual([
      `${keys.long}: uint16 [1000], 1.95 KiB`,
      '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, … (1000 elements)]',
    ]);
    expect((await run('get', storePath, keys.big!)).stdout).toContain(`[${-(2n ** 63n)}, 0, ${2n ** 63n - 1n}]`);
    const value = await run('get', storePath, keys.value!);
    expect(value.code).toBe(0);
    expect(value.stdout).toMatch(/msgpack value/);
    expect(value.stdout).toMatch(/name: 'run 7'/);
    expect(value.stdout).toMatch(/Float32Array\(2\) \[ 0\.5, 1\.5 \]/);
    expect(value.stdout).toMatch(/4611686018427387904n/);
  });

  it('get --out writes .bin raw bytes, .json for msgpack values and arrays, and .npy files', async () => {
    const bin = join(scratch, 'frame.bin');
    const binRun = await run('get', storePath, keys.frame!, '--out', bin);
    expect(binRun.code).toBe(0);
    expect(binRun.stdout).toContain(`written to ${bin}`);
    expect(new Uint8Array(readFileSync(bin))).toEqual(new Uint8Array(frame.buffer));

    const json = join(scratch, 'value.json');
    expect((await run('get', storePath, keys.value!, `--out=${json}`)).code).toBe(0);
    expect(JSON.parse(readFileSync(json, 'utf8'))).toEqual({
      name: 'run 7',
      samples: [0.5, 1.5],
      big: '4611686018427387904',
      tags: ['a'],
    });
    const arrayJson = join(scratch, 'int8.json');
    expect((await run('get', storePath, keys.int8!, '--out', arrayJson)).code).toBe(0);
    expect(JSON.parse(readFileSync(arrayJson, 'utf8'))).toEqual({
      dtype: 'int8',
      shape: [5],
      data: [-128, -1, 0, 1, 127],
    });

    const npy = join(scratch, 'frame.npy');
    expect((await run('get', storePath, keys.frame!, '--out', npy)).code).toBe(0);
    const file = readFileSync(npy);
    expect([...file.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const headerLength = file.readUInt16LE(8);
    expect((10 + headerLength) % 64).toBe(0);
    expect(file.subarray(10, 10 + headerLength).toString('latin1')).toMatch(
      /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(6, 8\), \} *\n$/,
    );
    expect(new Uint8Array(file.subarray(10 + headerLength))).toEqual(new Uint8Array(frame.buffer));
  });

  it.skipIf(python === undefined)(
    '.npy files round-trip through numpy.load: dtype, shape and every value',
    async () => {
      const cases: [string, string, string][] = [
        // key, numpy dtype, values as numpy prints them with tolist()
        [
          keys.frame!,
          'float32',
          JSON.stringify(Array.from({ length: 6 }, (_, row) => Array.from(frame.subarray(row * 8, row * 8 + 8)))),
        ],
        [keys.int8!, 'int8', '[-128, -1, 0, 1, 127]'],
        [keys.clamped!, 'uint8', '[[0], [128], [255]]'],
        [keys.big!, 'int64', `[${-(2n ** 63n)}, 0, ${2n ** 63n - 1n}]`],
        [keys.ubig!, 'uint64', `[${2n ** 64n - 1n}]`],
        [keys.scalar!, 'float64', String(Math.PI)],
        [keys.unflushed!, 'int32', '[[0, 0], [0, 0]]'],
      ];
      const files: string[] = [];
      for (const [key, dtype] of cases) {
        const file = join(scratch, `${dtype}-${key}.npy`);
        const result = await run('get', storePath, key, '--out', file);
        expect(result.code, result.stderr).toBe(0);
        files.push(file);
      }
      // One Python for all the files: each prints its dtype and its values as JSON.
      const check = spawnSync(
        python!,
        [
          '-c',
          'import json, sys, numpy\nfor f in sys.argv[1:]:\n  a = numpy.load(f)\n  print(a.dtype)\n  print(json.dumps(a.tolist()))',
          ...files,
        ],
        { encoding: 'utf8' },
      );
      expect(check.stderr).toBe('');
      const printed = check.stdout.trim().split('\n');
      cases.forEach(([key, dtype, values], index) => {
        expect(printed[2 * index], key).toBe(dtype);
        expect(JSON.parse(printed[2 * index + 1]!), key).toEqual(JSON.parse(values));
      });
    },
  );

  it('says what is wrong in one line, exit code 2, for bad input', async () => {
    const empty = join(scratch, 'empty');
    mkdirSync(empty, { recursive: true });
    const notAFolder = join(scratch, 'file.txt');
    writeFileSync(notAFolder, 'x');
    const fakeStore = join(scratch, 'fake');
    mkdirSync(fakeStore, { recursive: true });
    writeFileSync(join(fakeStore, 'data.mdb'), 'not lmdb at all');
    const cases: [string[], RegExp][] = [
      [['ls', join(scratch, 'nothing-here')], /does not exist/],
      [['ls', empty], /not an lmdb store: it has no data\.mdb/],
      [['ls', notAFolder], /is a file, not an lmdb store/],
      [['ls', fakeStore], /is not an improv lmdb store/],
      [
        ['get', storePath, 'no-such-key'],
        /no value under key "no-such-key" in .*: it has 10 keys; list them with improv store ls /,
      ],
      [['get', storePath, keys.frame!, '--out', join(scratch, 'frame.png')], /must end in \.npy .*\.bin .*\.json/],
      [
        ['get', storePath, keys.value!, '--out', join(scratch, 'value.npy')],
        /holds a msgpack value, not an array; export it with --out .*value\.json/,
      ],
      [['get', storePath], /give the store’s folder and a key/],
      [['ls'], /give the store’s folder/],
      [['ls', storePath, '--verbose'], /unknown option --verbose/],
      [['get', storePath, keys.frame!, '--out'], /--out needs a file name/],
      [['cat', storePath], /unknown command "cat"/],
    ];
    for (const [args, message] of cases) {
      const result = await run(...args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stdout, args.join(' ')).toBe('');
      expect(result.stderr.split('\n'), args.join(' ')).toHaveLength(1);
      expect(result.stderr, args.join(' ')).toMatch(/^improv store/);
      expect(result.stderr, args.join(' ')).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
    // A small store lists its keys right in the message.
    const small = join(scratch, 'small.lmdb');
    const store = await createLmdbStore({ path: small, keep: true }).open({ sizeBytes: MiB });
    const only = await store.client.put(1);
    const open = await run('ls', small);
    expect(open.stdout.split('\n')[0]).toMatch(/1 value, .* \(open by a run: process \d+\)$/);
    await store.close();
    const unknown = await run('get', small, 'nope');
    expect(unknown.stderr).toBe(`improv store get: no value under key "nope" in ${small}: its keys: ${only}`);
  });

  it('get --out x.json says how many numbers were NaN or ±Infinity (JSON has none: null), and .npy keeps them', async () => {
    const path = join(scratch, 'nan.lmdb');
    const store = await createLmdbStore({ path, keep: true }).open({ sizeBytes: MiB });
    const array = await store.client.put(new Float64Array([Number.NaN, Number.POSITIVE_INFINITY, -0, 1.5]));
    const value = await store.client.put({ f: Number.NaN, inf: Number.NEGATIVE_INFINITY, ok: 2 });
    const finite = await store.client.put(new Float32Array([1, 2]));
    await store.close();
    const arrayJson = join(scratch, 'nan.json');
    const arrayRun = await run('get', path, array, '--out', arrayJson);
    expect(arrayRun.code).toBe(0);
    expect(arrayRun.stderr).toBe(
      `improv store get: 2 numbers are NaN or ±Infinity, which JSON cannot hold: written as null; --out ${join(scratch, 'nan.npy')} keeps them`,
    );
    expect(JSON.parse(readFileSync(arrayJson, 'utf8')).data).toEqual([null, null, 0, 1.5]);
    const valueRun = await run('get', path, value, '--out', join(scratch, 'nan-value.json'));
    expect(valueRun.stderr).toBe(
      'improv store get: 2 numbers are NaN or ±Infinity, which JSON cannot hold: written as null',
    );
    expect((await run('get', path, finite, '--out', join(scratch, 'finite.json'))).stderr).toBe('');
  });

  it('writes NPY headers that are valid for every shape', () => {
    for (const shape of [[], [0], [3], [2, 3, 4]]) {
      const file = npyFile('uint8', shape, new Uint8Array(shape.reduce((a, b) => a * b, 1)));
      const length = new DataView(file.buffer).getUint16(8, true);
      expect((10 + length) % 64).toBe(0);
      const header = new TextDecoder().decode(file.subarray(10, 10 + length));
      expect(header.endsWith('\n')).toBe(true);
      expect(header).toContain(`'shape': ${shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`}`);
    }
  });
});
