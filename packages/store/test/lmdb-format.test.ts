// The LMDB layout's writers against the layout as docs/lmdb.md gives it (little-endian numbers,
// big-endian sort keys), written here with a DataView: the writers set bytes one by one.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  decodeObjectRecord,
  encodeObjectRecord,
  HEADER_FIXED_BYTES,
  headerBytes,
  MAGIC,
  OBJECT_RECORD_BYTES,
  readHeader,
  readSortKey,
  sortKey,
  writeHeader,
} from '../src/_lmdb-format.ts';

const BIG = 2 ** 40 + 2 ** 32 + 0x89abcdef;

describe('the lmdb layout', () => {
  it('a value header: magic, version, dtype, ndim, flags, byte length and shape as little-endian u64', () => {
    const shape = [3, 2 ** 33 + 5, 0xffffffff];
    const target = new Uint8Array(headerBytes(shape.length) + 4).fill(0xee);
    expect(writeHeader(target, 6, shape, BIG, 2)).toBe(HEADER_FIXED_BYTES + 24);
    const view = new DataView(target.buffer);
    expect(view.getUint32(0, true)).toBe(MAGIC);
    expect([...target.subarray(4, 8)]).toEqual([1, 6, 3, 2]);
    expect(view.getBigUint64(8, true)).toBe(BigInt(BIG));
    expect(shape.map((_, index) => view.getBigUint64(16 + 8 * index, true))).toEqual(shape.map(BigInt));
    expect([...target.subarray(40)]).toEqual([0xee, 0xee, 0xee, 0xee]); // nothing past the header
    expect(readHeader(target, target.length, 'test')).toMatchObject({ code: 6, shape, byteLength: BIG, flags: 2 });
  });

  it('an object record: six little-endian float64 fields, then the value header', () => {
    const header = new Uint8Array(HEADER_FIXED_BYTES);
    writeHeader(header, 2, [], 0, 0);
    const record = { sequence: BIG, charged: 4200, expiresAt: 1.7e12 + 0.5, inFlight: -1, flags: 3, created: 1.7e12 };
    const bytes = encodeObjectRecord(record, header, new Uint8Array(128).fill(0xee));
    expect(bytes.length).toBe(OBJECT_RECORD_BYTES + HEADER_FIXED_BYTES);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    expect([0, 8, 16, 24, 32, 40].map((offset) => view.getFloat64(offset, true))).toEqual([
      BIG,
      4200,
      1.7e12 + 0.5,
      -1,
      3,
      1.7e12,
    ]);
    expect([...bytes.subarray(OBJECT_RECORD_BYTES)]).toEqual([...header]);
    expect(decodeObjectRecord(bytes, bytes.length, 'test')).toMatchObject(record);
  });

  it('sort keys: big-endian u64s, so that byte order is number order across 2³²', () => {
    const numbers = [0, 1, 255, 0xffffffff, 2 ** 32, BIG, Number.MAX_SAFE_INTEGER];
    for (const first of numbers) {
      const key = sortKey(first, undefined, new Uint8Array(16));
      expect(key.length).toBe(8);
      expect(new DataView(key.buffer).getBigUint64(0)).toBe(BigInt(first));
      expect(readSortKey(key)).toBe(first);
    }
    const pair = sortKey(BIG, 7);
    expect(new DataView(pair.buffer).getBigUint64(8)).toBe(7n);
    const sorted = numbers.map((first) => Buffer.from(sortKey(first))).sort(Buffer.compare);
    expect(sorted.map((key) => readSortKey(key))).toEqual(numbers);
  });
});
