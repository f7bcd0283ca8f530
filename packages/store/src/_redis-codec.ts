/**
 * How the `redis` store lays out one value (package-private). The value's Redis string is its data
 * and nothing else — the raw little-endian bytes of a typed array, or the msgpack bytes of any
 * other value: no compression, no base64, no header in front. So a put writes the array's own
 * memory to the socket (no copy in this process), and a get turns the reply into the array.
 *
 * The header travels beside it, in the value's metadata hash (field `h`), and comes back with every
 * read in the same transaction:
 *
 * ```
 * offset  size        field
 * 0       1           format version (1)
 * 1       1           dtype code: 0 = msgpack value, 1..12 = typed array kind (core's typedArrayKinds order)
 * 2       1           ndim (0 for a msgpack value)
 * 3       5           zero
 * 8       8           byte length of the data (uint64 LE)
 * 16      8 × ndim    shape (uint64 LE each)
 * ```
 *
 * A value reserved by `allocate()` and not yet flushed has an empty string: readers see zeros.
 * @module
 */
import { Buffer } from 'node:buffer';
import { ofDtype, type TypedArray, type TypedArrayKind, typedArrayConstructors, typedArrayKinds } from '@improv/core';
import { decodeValue as decodeMsgpack, encodeOwn, MAX_DIMENSIONS } from './_codec.ts';

/** Format version in byte 0. */
export const FORMAT_VERSION = 1;
/** Fixed part of the header. */
export const HEADER_BYTES = 16;
/**
 * Largest Redis string: Redis refuses a bulk string over `proto-max-bulk-len`, 512 MiB by default,
 * and no string can be larger.
 */
export const MAX_VALUE_BYTES = 512 * 1024 * 1024;

/** The header of a value: `code` 0 (msgpack, no shape) or a dtype code with its shape. */
export function encodeHeader(code: number, byteLength: number, shape: readonly number[] | undefined): Buffer {
  const ndim = shape === undefined ? 0 : shape.length;
  const header = Buffer.alloc(HEADER_BYTES + 8 * ndim);
  header[0] = FORMAT_VERSION;
  header[1] = code;
  header[2] = ndim;
  setUint64(header, 8, byteLength);
  for (let index = 0; index < ndim; index++) setUint64(header, HEADER_BYTES + 8 * index, shape![index]!);
  return header;
}

function setUint64(target: Buffer, offset: number, value: number): void {
  target.writeUInt32LE(value % 0x100000000, offset);
  target.writeUInt32LE(Math.floor(value / 0x100000000), offset + 4);
}

function getUint64(source: Buffer, offset: number): number {
  return source.readUInt32LE(offset) + source.readUInt32LE(offset + 4) * 0x100000000;
}

/** A parsed header. */
export interface Header {
  /** 0 for a msgpack value, else the dtype code. */
  code: number;
  /** Shape of an array (empty for a msgpack value). */
  shape: number[];
  /** Bytes of data the value has (for an unflushed allocation, more than its string holds). */
  byteLength: number;
}

/** Parses a header; undefined when it is not one of ours. */
export function readHeader(bytes: Buffer): Header | undefined {
  if (bytes.byteLength < HEADER_BYTES || bytes[0] !== FORMAT_VERSION) return undefined;
  const code = bytes[1]!;
  const ndim = bytes[2]!;
  if (code > typedArrayConstructors.length || ndim > MAX_DIMENSIONS || (code === 0 && ndim !== 0)) return undefined;
  if (bytes.byteLength !== HEADER_BYTES + 8 * ndim) return undefined;
  const byteLength = getUint64(bytes, 8);
  const shape = new Array<number>(ndim);
  let product = 1;
  for (let index = 0; index < ndim; index++) {
    shape[index] = getUint64(bytes, HEADER_BYTES + 8 * index);
    product *= shape[index]!;
  }
  if (code !== 0 && product * typedArrayConstructors[code - 1]!.BYTES_PER_ELEMENT !== byteLength) return undefined;
  return { code, shape, byteLength };
}

/** The bytes of a typed array as a Buffer over the same memory (no copy). */
export function bytesOf(array: ArrayBufferView): Buffer {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}

/**
 * The typed array of a value read from Redis. When `data` is a buffer of its own (node-redis
 * assembles a reply that spans socket reads into a fresh one) and complete, the array is a view of
 * it: no copy. Otherwise — a small reply that shares the socket's read buffer, or an allocation not
 * yet flushed, whose missing bytes are zeros — the data is copied into a fresh array.
 */
export function arrayOf(data: Buffer, header: Header): TypedArray {
  const ctor = typedArrayConstructors[header.code - 1]!;
  const length = header.byteLength / ctor.BYTES_PER_ELEMENT;
  if (
    header.byteLength > 0 &&
    data.byteLength === header.byteLength &&
    data.byteOffset === 0 &&
    data.buffer.byteLength === data.byteLength &&
    !(data.buffer instanceof SharedArrayBuffer)
  ) {
    return ofDtype(header.code, new ctor(data.buffer, 0, length));
  }
  const array = ofDtype(header.code, new ctor(length));
  const copied = Math.min(data.byteLength, header.byteLength);
  if (copied > 0) new Uint8Array(array.buffer, 0, copied).set(data.subarray(0, copied));
  return array;
}

/** Dtype name of a code. */
export function kindOf(code: number): TypedArrayKind {
  return typedArrayKinds[code - 1]!;
}

/**
 * Encodes a msgpack value into a buffer of its own (it may still be on its way to the server when
 * the next value is encoded). Throws `TypeError` for values msgpack cannot represent.
 */
export function encodeValue(value: unknown): Buffer {
  return bytesOf(encodeOwn(value, 'redis store'));
}

/**
 * Decodes the msgpack bytes of a value, given as a plain Uint8Array view: the codec copies nested
 * arrays with `slice()`, which on a Buffer would be a view of the socket's memory.
 */
export function decodeValue(data: Buffer): unknown {
  return decodeMsgpack(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}
