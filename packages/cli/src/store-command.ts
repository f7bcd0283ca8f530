/**
 * `improv store ls <path>` and `improv store get <path> <key> [--out file]`: look into an LMDB
 * store (a kept one after its run, or one a run has open) read-only, with the lmdb driver's own
 * reader. Exit codes: 0 ok, 2 bad input (no store there, an unknown key, a bad --out), 1 an
 * unexpected failure.
 * @module
 */

import { Buffer } from 'node:buffer';
import { writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { inspect } from 'node:util';
import { formatBytes, type TypedArray, type TypedArrayKind } from '@improv/core';
import { type LmdbStoreEntry, type LmdbStoreReader, openLmdbStoreReader } from '@improv/store/lmdb';
import { exitCodes } from './exit-codes.ts';
import { shellLine } from './text.ts';

/** Where the command writes: one call per line, without the newline. */
export interface StoreCommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** `improv store --help`. */
export const storeHelp = `Usage: improv store <command> <path> [...]

Look into an LMDB store (settings.store: lmdb) — a kept one after its run (lmdb: { keep: true }), or
one a run has open — read-only: nothing in the store changes.

Commands:
  ls <path>                      list the values: key, dtype (or "value" for msgpack values), shape, size
  get <path> <key> [--out file]  print one value (an array: dtype, shape, first elements), or export it:
                                   file.npy   a NumPy file (numpy.load) — arrays
                                   file.bin   the raw bytes: an array's little-endian elements, a value's msgpack
                                   file.json  JSON — msgpack values, and arrays as { dtype, shape, data };
                                              NaN and ±Infinity become null (JSON has none; it says how many)

<path> is the store's folder (settings.lmdb.path), the one holding data.mdb and lock.mdb.

Examples:
  improv store ls data/run.lmdb
  improv store get data/run.lmdb l3k9x2-1.4
  improv store get data/run.lmdb l3k9x2-1.4 --out frame.npy`;

const outExtensions = ['.npy', '.bin', '.json'];
/** Elements of an array `get` prints. */
const SHOWN_ELEMENTS = 10;

/** Runs `improv store …` with the words after `store`; resolves to the exit code. */
export async function runStoreCommand(args: readonly string[], io: StoreCommandIo): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined) {
    io.stderr(storeHelp);
    return exitCodes.usage;
  }
  if (command === '-h' || command === '--help' || command === 'help') {
    io.stdout(storeHelp);
    return exitCodes.ok;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    io.stdout(storeHelp);
    return exitCodes.ok;
  }
  const usage = (message: string): number => {
    io.stderr(`improv store${command === 'ls' || command === 'get' ? ` ${command}` : ''}: ${message}`);
    return exitCodes.usage;
  };
  if (command !== 'ls' && command !== 'get') {
    return usage(
      `unknown command "${command}"; use improv store ls <path> or improv store get <path> <key> (improv store --help)`,
    );
  }
  let out: string | undefined;
  const positional: string[] = [];
  for (let index = 0; index < rest.length; index++) {
    const word = rest[index]!;
    if (word === '--out' || word === '-o') {
      const file = rest[index + 1];
      if (file === undefined || file === '') return usage(`${word} needs a file name, e.g. --out frame.npy`);
      out = file;
      index++;
    } else if (word.startsWith('--out=')) {
      out = word.slice('--out='.length);
      if (out === '') return usage('--out needs a file name, e.g. --out=frame.npy');
    } else if (word.startsWith('-') && word !== '-') {
      return usage(`unknown option ${word} (improv store --help)`);
    } else positional.push(word);
  }
  if (command === 'ls') {
    if (out !== undefined) return usage('--out belongs to improv store get');
    if (positional.length !== 1) return usage('give the store’s folder: improv store ls <path>');
  } else if (positional.length !== 2) {
    return usage(
      'give the store’s folder and a key: improv store get <path> <key> [--out file] (improv store ls <path> lists the keys)',
    );
  }
  if (out !== undefined && !outExtensions.includes(extname(out).toLowerCase())) {
    return usage(`--out ${out}: the file name must end in .npy (an array for numpy), .bin (raw bytes) or .json`);
  }
  const path = positional[0]!;
  let reader: LmdbStoreReader;
  try {
    reader = await openLmdbStoreReader(path);
  } catch (error) {
    return usage(firstLine(error));
  }
  try {
    if (command === 'ls') return list(reader, path, io);
    return get(reader, path, positional[1]!, out, io);
  } catch (error) {
    io.stderr(`improv store ${command}: ${firstLine(error)}`);
    return exitCodes.failure;
  } finally {
    await reader.close();
  }
}

function list(reader: LmdbStoreReader, path: string, io: StoreCommandIo): number {
  const usage = reader.usage();
  const entries = reader.list();
  const open = reader.openBy === undefined ? '' : ` (open by a run: process ${reader.openBy})`;
  io.stdout(
    `${path}: ${entries.length} value${entries.length === 1 ? '' : 's'}, ${formatBytes(usage.usedBytes)} of ${formatBytes(usage.capacityBytes)} used${open}`,
  );
  if (entries.length === 0) return exitCodes.ok;
  const rows = entries.map((entry) => [
    entry.key,
    entry.kind === 'array' ? entry.dtype! : 'value',
    entry.kind === 'array' ? `[${entry.shape!.join(', ')}]` : '',
    formatBytes(entry.byteLength),
    notes(entry),
  ]);
  const header = ['KEY', 'DTYPE', 'SHAPE', 'SIZE', ''];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === 3 ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  io.stdout(line(header));
  for (const row of rows) io.stdout(line(row));
  return exitCodes.ok;
}

function notes(entry: LmdbStoreEntry): string {
  const parts: string[] = [];
  if (entry.unwritten) parts.push('allocated, never flushed (zeros)');
  if (entry.expiresAt !== undefined) {
    parts.push(`${entry.expiresAt <= Date.now() ? 'expired' : 'expires'} ${new Date(entry.expiresAt).toISOString()}`);
  }
  return parts.join('; ');
}

function get(reader: LmdbStoreReader, path: string, key: string, out: string | undefined, io: StoreCommandIo): number {
  const found = reader.read(key);
  if (found === undefined) {
    const keys = reader.list().map((entry) => entry.key);
    const known =
      keys.length === 0
        ? 'the store is empty'
        : keys.length <= 5
          ? `its keys: ${keys.join(', ')}`
          : `it has ${keys.length} keys; list them with ${shellLine(['improv', 'store', 'ls', path])}`;
    io.stderr(`improv store get: no value under key "${key}" in ${path}: ${known}`);
    return exitCodes.usage;
  }
  const { entry, value } = found;
  if (out === undefined) {
    for (const line of describe(entry, value)) io.stdout(line);
    return exitCodes.ok;
  }
  const extension = extname(out).toLowerCase();
  let bytes: Uint8Array;
  if (extension === '.npy') {
    if (entry.kind !== 'array') {
      io.stderr(
        `improv store get: key "${key}" holds a msgpack value, not an array; export it with --out ${replaceExtension(out, '.json')} (or .bin for its msgpack bytes)`,
      );
      return exitCodes.usage;
    }
    bytes = npyFile(entry.dtype!, entry.shape!, reader.bytes(key)!.bytes);
  } else if (extension === '.bin') {
    bytes = reader.bytes(key)!.bytes;
  } else {
    const json =
      entry.kind === 'array'
        ? { dtype: entry.dtype, shape: entry.shape, data: (value as { array: TypedArray }).array }
        : value;
    let nonFinite = 0;
    // Every number passes here, also each element of an array the replacer made of a typed array.
    const text = JSON.stringify(
      json,
      (name, item: unknown) => {
        const replaced = jsonReplacer(name, item);
        if (typeof replaced === 'number' && !Number.isFinite(replaced)) nonFinite += 1;
        return replaced;
      },
      2,
    );
    bytes = new TextEncoder().encode(`${text}\n`);
    if (nonFinite > 0) {
      // JSON has no NaN or Infinity: said, not silently turned into null.
      io.stderr(
        `improv store get: ${nonFinite} number${nonFinite === 1 ? ' is' : 's are'} NaN or ±Infinity, which JSON cannot hold: written as null${entry.kind === 'array' ? `; --out ${replaceExtension(out, '.npy')} keeps them` : ''}`,
      );
    }
  }
  try {
    writeFileSync(out, bytes);
  } catch (error) {
    io.stderr(`improv store get: cannot write ${out}: ${firstLine(error)}`);
    return exitCodes.usage;
  }
  const what = entry.kind === 'array' ? `${entry.dtype} [${entry.shape!.join(', ')}]` : 'msgpack value';
  io.stdout(`${key}: ${what} written to ${out} (${formatBytes(bytes.byteLength)})`);
  return exitCodes.ok;
}

/** What `get` prints for a value. */
function describe(entry: LmdbStoreEntry, value: unknown): string[] {
  if (entry.kind === 'array') {
    const { array } = value as { array: TypedArray };
    const shown = Array.from(array.subarray(0, SHOWN_ELEMENTS) as ArrayLike<number | bigint>, (element) =>
      String(element),
    );
    const more = array.length > SHOWN_ELEMENTS ? `, … (${array.length} elements)` : '';
    const lines = [
      `${entry.key}: ${entry.dtype} [${entry.shape!.join(', ')}], ${formatBytes(entry.byteLength)}`,
      `[${shown.join(', ')}${more}]`,
    ];
    if (entry.unwritten) lines.push('(allocated and never flushed: zeros)');
    return lines;
  }
  return [
    `${entry.key}: msgpack value, ${formatBytes(entry.byteLength)}`,
    inspect(value, { depth: 8, colors: false, maxArrayLength: 50, maxStringLength: 2000, breakLength: 100 }),
  ];
}

/** JSON of a msgpack value: typed arrays as arrays, Map as an object, Set as an array, bigints as strings. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number | bigint>, (element) =>
      typeof element === 'bigint' ? jsonReplacer('', element) : element,
    );
  }
  if (value instanceof ArrayBuffer) return Array.from(new Uint8Array(value));
  if (value instanceof Map) return Object.fromEntries([...value].map(([key, item]) => [String(key), item]));
  if (value instanceof Set) return [...value];
  return value;
}

/** NumPy's little-endian dtype of each kind. */
const numpyDtypes: Record<TypedArrayKind, string> = {
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

/**
 * A `.npy` file (NPY format 1.0): the magic `\x93NUMPY`, version 1.0, the header length (u16 LE),
 * the header — a Python dict literal padded with spaces to a newline so that the data starts at a
 * multiple of 64 bytes — then the raw little-endian elements in C order.
 */
export function npyFile(dtype: TypedArrayKind, shape: readonly number[], data: Uint8Array): Uint8Array {
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${numpyDtypes[dtype]}', 'fortran_order': False, 'shape': ${tuple}, }`;
  const preamble = 10; // magic (6) + version (2) + header length (2)
  const total = Math.ceil((preamble + dict.length + 1) / 64) * 64;
  const header = `${dict}${' '.repeat(total - preamble - dict.length - 1)}\n`;
  const file = new Uint8Array(total + data.byteLength);
  file.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]); // \x93NUMPY 1.0
  new DataView(file.buffer).setUint16(8, header.length, true);
  file.set(Buffer.from(header, 'latin1'), preamble);
  file.set(data, total);
  return file;
}

function replaceExtension(file: string, extension: string): string {
  const current = extname(file);
  return `${current === '' ? file : file.slice(0, -current.length)}${extension}`;
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]!;
}
