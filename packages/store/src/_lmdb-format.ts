/**
 * The on-disk layout of an improv LMDB store (package-private): names of the LMDB databases, the
 * header of each value and the small fixed records beside it. The driver (`lmdb.ts`), `improv store`
 * and the Python reader of `docs/lmdb.md` all read this one layout; `docs/lmdb.md` describes it.
 * Every number is little-endian except the sort keys (big-endian, so LMDB's byte order is their order).
 * @module
 */
import { type TypedArrayKind, typedArrayConstructors, typedArrayKinds } from '@improv/core';
import { MAX_DIMENSIONS } from './_codec.ts';

/** Version of this layout, in every value header and in the `store` meta entry. */
export const LAYOUT_VERSION = 1;
/** What the `store` meta entry's `format` says. */
export const LAYOUT_FORMAT = 'improv-lmdb';

/** Names of the LMDB databases (named sub-databases of the environment). */
export const DB = {
  /** store key (UTF-8) → value header + payload. */
  values: 'values',
  /** store key → object record ({@link OBJECT_RECORD_BYTES} bytes + a copy of the value header). */
  objects: 'objects',
  /** put sequence (u64 BE) → store key: oldest first, for eviction. */
  order: 'order',
  /** expiry time in ms (u64 BE) + sequence (u64 BE) → store key: for the TTL reaper. */
  expiry: 'expiry',
  /** store key + 0x00 + client id (u32 BE) → hold expiry in ms (f64). */
  holds: 'holds',
  /** store key → reason (u8: 1 evicted, 2 expired) + tombstone sequence (f64): why a key is gone. */
  gone: 'gone',
  /** tombstone sequence (u64 BE) → store key: oldest tombstone first, to keep `gone` bounded. */
  goneOrder: 'gone-order',
  /** name (UTF-8) → JSON (`store`, `session`) or f64 counters (`usedBytes`, `objects`, ...). */
  meta: 'meta',
} as const;

/** Meta entries. */
export const META = {
  /** JSON {@link StoreRecord}: written once when the store is created. */
  store: 'store',
  /** JSON {@link SessionRecord}: the run that has the store open; absent when none has. */
  session: 'session',
  usedBytes: 'usedBytes',
  objects: 'objects',
  capacityBytes: 'capacityBytes',
  nextClient: 'nextClient',
  nextSequence: 'nextSequence',
  nextTombstone: 'nextTombstone',
  tombstones: 'tombstones',
} as const;

/** The `store` meta entry. */
export interface StoreRecord {
  format: typeof LAYOUT_FORMAT;
  version: number;
  /** Prefix of every key of this store. */
  keyPrefix: string;
  /** ISO time the store was created. */
  created: string;
}

/** The `session` meta entry: who has the store open. */
export interface SessionRecord {
  /** Random id, also in the descriptor: a client whose descriptor names another session is stale. */
  id: string;
  /** Process that opened it, to tell a live run from one that died. */
  pid: number;
  /** Whether the store is removed when that run closes it. */
  keep: boolean;
  /** ISO time it was opened. */
  opened: string;
}

/** Value header magic: `IMPV`. */
export const MAGIC = 0x56504d49; // 'I' 'M' 'P' 'V' read as a little-endian u32
/** Header bytes before the shape: magic (4), version, dtype, ndim, flags (1 each), payload length (8). */
export const HEADER_FIXED_BYTES = 16;
/** Header flag: the value was allocated and not written yet; its payload is absent and reads as zeros. */
export const FLAG_UNWRITTEN = 1;
/**
 * Bytes charged per value on top of its header and payload in `usage()` and the capacity check: the
 * object record, the order entry and the B-tree nodes that index the value.
 */
export const INDEX_OVERHEAD_BYTES = 64;

/** What the header of a value says. */
export interface ValueHeader {
  /** 0 for a msgpack value, 1..12 for a typed array (index + 1 in `typedArrayKinds`; 12 is numpy's bool). */
  code: number;
  /** Empty for a msgpack value. */
  shape: number[];
  /** Payload bytes (for an unwritten allocation: the bytes it will have). */
  byteLength: number;
  flags: number;
  /** Where the payload starts. */
  headerBytes: number;
}

/** Header bytes of a value with `ndim` dimensions. */
export function headerBytes(ndim: number): number {
  return HEADER_FIXED_BYTES + 8 * ndim;
}

/** Writes a value header at the start of `target`; returns its length. */
export function writeHeader(
  target: Uint8Array,
  code: number,
  shape: readonly number[],
  byteLength: number,
  flags: number,
): number {
  // Byte by byte, not through a DataView: a put writes a header, an object record and a sort key,
  // and a DataView each cost more than the writes themselves.
  putUint32LE(target, 0, MAGIC);
  target[4] = LAYOUT_VERSION;
  target[5] = code;
  target[6] = shape.length;
  target[7] = flags;
  putUint64LE(target, 8, byteLength);
  for (let index = 0; index < shape.length; index++) putUint64LE(target, HEADER_FIXED_BYTES + 8 * index, shape[index]!);
  return headerBytes(shape.length);
}

/** Reads a value header; throws a plain Error naming `what` when it is not one. */
export function readHeader(bytes: Uint8Array, length: number, what: string): ValueHeader {
  if (length < HEADER_FIXED_BYTES) throw new Error(`${what}: ${length} bytes are too short for a value header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, length);
  if (view.getUint32(0, true) !== MAGIC) throw new Error(`${what}: no value header (bad magic)`);
  const version = view.getUint8(4);
  if (version !== LAYOUT_VERSION) {
    throw new Error(`${what}: value header of layout version ${version}; this improv reads version ${LAYOUT_VERSION}`);
  }
  const code = view.getUint8(5);
  const ndim = view.getUint8(6);
  const flags = view.getUint8(7);
  if (code > typedArrayKinds.length || ndim > MAX_DIMENSIONS || (code === 0 && ndim !== 0)) {
    throw new Error(`${what}: corrupt value header (dtype code ${code}, ${ndim} dimensions)`);
  }
  const size = headerBytes(ndim);
  if (length < size) throw new Error(`${what}: value header cut short`);
  const byteLength = getUint64(view, 8);
  const shape = new Array<number>(ndim);
  for (let index = 0; index < ndim; index++) shape[index] = getUint64(view, HEADER_FIXED_BYTES + 8 * index);
  return { code, shape, byteLength, flags, headerBytes: size };
}

/** Kind name of a dtype code (1..12). */
export function kindOfCode(code: number): TypedArrayKind {
  return typedArrayKinds[code - 1]!;
}

/** Bytes per element of a dtype code (1..12). */
export function elementBytes(code: number): number {
  return typedArrayConstructors[code - 1]!.BYTES_PER_ELEMENT;
}

/**
 * The object record (`objects` database): fixed fields, then a copy of the value header (so `info`
 * and `improv store ls` never read a value itself).
 */
export interface ObjectRecord {
  /** Put sequence: the eviction order. */
  sequence: number;
  /** Bytes charged for the value (header + payload + {@link INDEX_OVERHEAD_BYTES}). */
  charged: number;
  /** Expiry time in ms since the epoch; 0 for none. */
  expiresAt: number;
  /** Messages carrying the key that wait in links (`track`). */
  inFlight: number;
  /** {@link RECORD_READ} | {@link RECORD_UNWRITTEN}. */
  flags: number;
  /** Time of the put in ms since the epoch. */
  created: number;
  header: ValueHeader;
}

/** Object record flag: some client has read the value (eviction may take it). */
export const RECORD_READ = 1;
/** Object record flag: an allocation not flushed yet. */
export const RECORD_UNWRITTEN = 2;
/** Fixed part of an object record: six f64. */
export const OBJECT_RECORD_BYTES = 48;

/**
 * An object record, in new memory or, given `target`, at its start (a buffer reused for records that
 * are written, and so copied, at once: it must hold `OBJECT_RECORD_BYTES` and the header).
 */
export function encodeObjectRecord(
  record: Omit<ObjectRecord, 'header'>,
  header: Uint8Array,
  target?: Uint8Array,
): Uint8Array {
  const size = OBJECT_RECORD_BYTES + header.byteLength;
  const bytes = target === undefined ? new Uint8Array(size) : target.subarray(0, size);
  const fields = objectFields;
  fields[0] = record.sequence;
  fields[1] = record.charged;
  fields[2] = record.expiresAt;
  fields[3] = record.inFlight;
  fields[4] = record.flags;
  fields[5] = record.created;
  if (littleEndian) bytes.set(objectFieldBytes, 0);
  else for (let index = 0; index < OBJECT_RECORD_BYTES; index++) bytes[index] = objectFieldBytes[index ^ 7]!;
  bytes.set(header, OBJECT_RECORD_BYTES);
  return bytes;
}

export function decodeObjectRecord(bytes: Uint8Array, length: number, what: string): ObjectRecord {
  if (length < OBJECT_RECORD_BYTES + HEADER_FIXED_BYTES) throw new Error(`${what}: object record too short`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, length);
  return {
    sequence: view.getFloat64(0, true),
    charged: view.getFloat64(8, true),
    expiresAt: view.getFloat64(16, true),
    inFlight: view.getFloat64(24, true),
    flags: view.getFloat64(32, true),
    created: view.getFloat64(40, true),
    header: readHeader(bytes.subarray(OBJECT_RECORD_BYTES, length), length - OBJECT_RECORD_BYTES, what),
  };
}

/** Tombstone reasons in the `gone` database. */
export const GONE_EVICTED = 1;
export const GONE_EXPIRED = 2;
/** Most tombstones kept; the oldest go first. */
export const MAX_TOMBSTONES = 10_000;

/**
 * An unsigned integer (< 2^53) as 8 big-endian bytes, optionally after another one: sort keys. In
 * new memory or, given `target`, at its start (as for {@link encodeObjectRecord}).
 */
export function sortKey(first: number, second?: number, target?: Uint8Array): Uint8Array {
  const size = second === undefined ? 8 : 16;
  const bytes = target === undefined ? new Uint8Array(size) : target.subarray(0, size);
  putUint64BE(bytes, 0, first);
  if (second !== undefined) putUint64BE(bytes, 8, second);
  return bytes;
}

/** The first 8 bytes of a sort key as a number. */
export function readSortKey(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.getUint32(0) * 0x100000000 + view.getUint32(4);
}

/** As `DataView.setUint32(offset, value, true)` (the value taken modulo 2³²), without a DataView. */
function putUint32LE(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value & 0xff;
  target[offset + 1] = (value >>> 8) & 0xff;
  target[offset + 2] = (value >>> 16) & 0xff;
  target[offset + 3] = value >>> 24;
}

/** As `DataView.setUint32(offset, value)` (big-endian), without a DataView. */
function putUint32BE(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value >>> 24;
  target[offset + 1] = (value >>> 16) & 0xff;
  target[offset + 2] = (value >>> 8) & 0xff;
  target[offset + 3] = value & 0xff;
}

function putUint64LE(target: Uint8Array, offset: number, value: number): void {
  putUint32LE(target, offset, value % 0x100000000);
  putUint32LE(target, offset + 4, Math.floor(value / 0x100000000));
}

function putUint64BE(target: Uint8Array, offset: number, value: number): void {
  putUint32BE(target, offset, Math.floor(value / 0x100000000));
  putUint32BE(target, offset + 4, value % 0x100000000);
}

/** The float64 fields of an object record in this platform's byte order, and whether that is little-endian. */
const objectFields = new Float64Array(OBJECT_RECORD_BYTES / 8);
const objectFieldBytes = new Uint8Array(objectFields.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function getUint64(view: DataView, offset: number): number {
  return view.getUint32(offset, true) + view.getUint32(offset + 4, true) * 0x100000000;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** UTF-8 bytes of a string (LMDB keys). */
export function utf8Bytes(text: string): Uint8Array {
  return utf8.encode(text);
}

/** Writes the UTF-8 bytes of `text` at the start of `target` (room for them: 3 bytes a UTF-16 unit); returns their length. */
export function utf8BytesInto(text: string, target: Uint8Array): number {
  return utf8.encodeInto(text, target).written;
}

/** A string from UTF-8 bytes. */
export function utf8Text(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

/** Numpy's name of each dtype code, for messages and the docs (little-endian). */
export const NUMPY_DTYPES: readonly string[] = [
  '|i1',
  '|u1',
  '|u1',
  '<i2',
  '<u2',
  '<i4',
  '<u4',
  '<f4',
  '<f8',
  '<i8',
  '<u8',
];
