/**
 * The msgpack codec every store driver and transport shares, and the typed-array kinds the store
 * contract names. One definition, so a value put into a store and a message sent over a link mean
 * the same thing everywhere.
 *
 * @example
 * ```ts
 * import { Decoder, Encoder } from '@msgpack/msgpack';
 * import { msgpackOptions } from '@improv/core';
 * const encoder = new Encoder(msgpackOptions);
 * ```
 * @module
 */
import { Decoder, Encoder, ExtData, ExtensionCodec, type ExtensionCodecType } from '@msgpack/msgpack';
import type { TypedArray, TypedArrayKind } from './store/driver.ts';

/** A typed array class. */
export type TypedArrayConstructor = {
  new (length: number): TypedArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
};

/** Kinds in the order of their dtype codes (code = index + 1; 0 means "msgpack value"). */
export const typedArrayKinds: readonly TypedArrayKind[] = [
  'int8',
  'uint8',
  'uint8clamped',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'float32',
  'float64',
  'bigint64',
  'biguint64',
];

export const typedArrayConstructors: readonly TypedArrayConstructor[] = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
];

const codeByConstructor = new Map<unknown, number>(typedArrayConstructors.map((ctor, index) => [ctor, index + 1]));
const codeByKind = new Map<string, number>(typedArrayKinds.map((kind, index) => [kind, index + 1]));

/**
 * Dtype code (1..11) of a typed array, or 0 for anything else. The constructor lookup is the fast
 * path; the `instanceof` walk catches subclasses such as Node's `Buffer`.
 */
export function dtypeCodeOf(value: unknown): number {
  if (typeof value !== 'object' || value === null || !ArrayBuffer.isView(value)) return 0;
  const direct = codeByConstructor.get(value.constructor);
  if (direct !== undefined) return direct;
  for (let index = 0; index < typedArrayConstructors.length; index++) {
    if (value instanceof typedArrayConstructors[index]!) return index + 1;
  }
  return 0;
}

/** Dtype code of a kind name, or 0 when the name is not a kind. */
export function dtypeCodeOfKind(kind: unknown): number {
  return typeof kind === 'string' ? (codeByKind.get(kind) ?? 0) : 0;
}

// Extension types 0..10 are the typed-array kinds (one type per kind, so the raw bytes go into the
// message without a tag byte and therefore without an extra copy); 11..13 keep Map, Set and
// ArrayBuffer, which msgpack would otherwise turn into `{}` without a word; -1 is msgpack's own
// timestamp (Date).
const EXT_MAP = 11;
const EXT_SET = 12;
const EXT_ARRAY_BUFFER = 13;

/** msgpack's own extensions (Date as a timestamp) and its handling of unknown types. */
const builtIn = new ExtensionCodec();

/**
 * One codec for all of improv's extension types. msgpack asks the codec about every object and
 * array it encodes; an `ExtensionCodec` with one registration per type would try all 14 encoders
 * each time (7% of a producer's time in the bench, for `{ key, t }` messages), where this one
 * decides with a type check or four.
 */
const extensionCodec: ExtensionCodecType<undefined> = {
  tryToEncode(object, context) {
    if (ArrayBuffer.isView(object)) {
      const code = dtypeCodeOf(object);
      // A DataView is no typed array: msgpack stores it as plain binary.
      if (code === 0) return null;
      // Bytes as they are: a small array's `buffer` is costly to ask for (see decode).
      const bytes =
        object instanceof Uint8Array ? object : new Uint8Array(object.buffer, object.byteOffset, object.byteLength);
      return new ExtData(code - 1, bytes);
    }
    if (object instanceof Map) return new ExtData(EXT_MAP, encoder.encode(Array.from(object)));
    if (object instanceof Set) return new ExtData(EXT_SET, encoder.encode(Array.from(object)));
    if (object instanceof ArrayBuffer) return new ExtData(EXT_ARRAY_BUFFER, new Uint8Array(object));
    return builtIn.tryToEncode(object, context);
  },
  decode(data, type, context) {
    const ctor = type >= 0 ? typedArrayConstructors[type] : undefined;
    if (ctor !== undefined) {
      if (data.byteLength % ctor.BYTES_PER_ELEMENT !== 0) {
        throw new RangeError(
          `msgpack: corrupt ${typedArrayKinds[type]} array in a message (${data.byteLength} bytes is not a multiple of ${ctor.BYTES_PER_ELEMENT})`,
        );
      }
      // Copy so the array owns aligned memory and does not pin the whole decoded message. Into a
      // fresh Uint8Array: a Node Buffer's slice() is a view, not a copy, and slice() through
      // Uint8Array's prototype goes by the species of `data` — Bun then builds a Buffer per array,
      // a quarter of a zmq link's time at 4 KiB.
      // Bytes are the copy itself; other kinds are views of an ArrayBuffer made for them. Never
      // `copy.buffer`: V8 keeps a small typed array (up to 64 bytes) inside its object, and asking
      // for its buffer moves it out — 0.8 µs, two thirds of decoding a small message.
      if (ctor === Uint8Array) return copyBytes(data);
      const buffer = new ArrayBuffer(data.byteLength);
      new Uint8Array(buffer).set(data);
      return new ctor(buffer, 0, data.byteLength / ctor.BYTES_PER_ELEMENT);
    }
    if (type === EXT_MAP) return new Map(decoder.decode(data) as [unknown, unknown][]);
    if (type === EXT_SET) return new Set(decoder.decode(data) as unknown[]);
    if (type === EXT_ARRAY_BUFFER) return copyBytes(data).buffer;
    return builtIn.decode(data, type, context);
  },
};

/** A copy of `data` in memory of its own (a plain Uint8Array, whatever the class of `data`). */
function copyBytes(data: Uint8Array): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return copy;
}

// The Map and Set extensions encode their entries with these (msgpack clones an instance when it
// is re-entered, so sharing them is safe).
const encoder = new Encoder({ extensionCodec, useBigInt64: true });
const decoder = new Decoder({ extensionCodec, useBigInt64: true });

/**
 * Options for `new Encoder()` / `new Decoder()` of @msgpack/msgpack that every store and transport
 * uses, so a value means the same in a store and on a link: typed arrays keep their kind, Map, Set
 * and ArrayBuffer survive (plain msgpack turns them into `{}`), and 64-bit integers are bigints.
 */
export const msgpackOptions = { extensionCodec, useBigInt64: true } as const;
