/**
 * The msgpack codec every store driver and transport shares, and the typed-array kinds the store
 * contract names. One definition, so a value put into a store and a message sent over a link mean
 * the same thing everywhere.
 *
 * Integers mean what they say in either language: a 64-bit integer in a message (Python writes one
 * for any int of 2³² or more, such as `int(time.time() * 1000)`) decodes as a `number` when it is a
 * safe integer (|n| ≤ 2⁵³ − 1) and as a `bigint` only beyond that, and a `number` that is a safe
 * integer outside the 32-bit range (such as `Date.now()`) is written as a 64-bit integer, so Python
 * reads an int, not a float. Bigints are written as 64-bit integers as before, so a bigint within the
 * safe range comes back as a number. BigInt64Array and BigUint64Array are typed arrays and unaffected.
 *
 * What would arrive changed, or that a reader could not decode, is refused with an
 * {@link UnencodableValueError} that says what to send instead: an invalid Date, an Error, a RegExp,
 * an own `__proto__` key, a string with a lone surrogate, a bigint beyond 64 bits. `-0` keeps its sign.
 *
 * @example
 * ```ts
 * import { MsgpackDecoder, MsgpackEncoder } from '@improv/core';
 * const encoder = new MsgpackEncoder();
 * const decoder = new MsgpackDecoder();
 * decoder.decode(encoder.encode({ t: Date.now() })); // { t: 1796583342026 }, a number both ways
 * ```
 * @module
 */
import {
  Decoder,
  type DecoderOptions,
  Encoder,
  type EncoderOptions,
  ExtData,
  ExtensionCodec,
  type ExtensionCodecType,
} from '@msgpack/msgpack';
import type { TypedArray, TypedArrayKind } from './store/driver.ts';

/** A typed array class. */
export type TypedArrayConstructor = {
  new (length: number): TypedArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
};

/**
 * Kinds in the order of their dtype codes (code = index + 1; 0 means "msgpack value"). The last,
 * `bool` (12), is numpy's: a `Uint8Array` here, never the code of a typed array TypeScript makes.
 */
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
  'bool',
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
  Uint8Array,
];

/** The dtype code of `bool`, whose values are `Uint8Array`s here (see {@link typedArrayKinds}). */
export const BOOL_DTYPE_CODE = 12;
/** The typed array classes of TypeScript's own kinds (codes 1..11), by code - 1. */
const ownConstructors = typedArrayConstructors.slice(0, BOOL_DTYPE_CODE - 1);

const codeByConstructor = new Map<unknown, number>(ownConstructors.map((ctor, index) => [ctor, index + 1]));
const codeByKind = new Map<string, number>(typedArrayKinds.map((kind, index) => [kind, index + 1]));

/** The dtype code of `uint8`, the class numpy's bools are read into. */
const UINT8_DTYPE_CODE = 2;

/**
 * The `Uint8Array`s that hold numpy bools: read from a `bool` value or message, or made by
 * `allocate('bool', …)`. Put or sent again as they are, they stay `bool` (a mask a TypeScript actor
 * passes on reaches Python as a mask); a copy (`slice()`, `new Uint8Array(…)`) is plain `uint8`.
 */
const boolArrays = new WeakSet<object>();

/**
 * `array`, marked as numpy bools when `code` is {@link BOOL_DTYPE_CODE} (see `boolArrays`): what a
 * store or codec returns for a value of dtype `code`.
 */
export function ofDtype<T extends object>(code: number, array: T): T {
  if (code === BOOL_DTYPE_CODE) boolArrays.add(array);
  return array;
}

/**
 * Dtype code of a typed array — 1..11 by its class, 12 (`bool`) for a `Uint8Array` read as numpy
 * bools (see {@link ofDtype}) — or 0 for anything else. The constructor lookup is the fast path; the
 * `instanceof` walk catches subclasses such as Node's `Buffer`.
 */
export function dtypeCodeOf(value: unknown): number {
  if (typeof value !== 'object' || value === null || !ArrayBuffer.isView(value)) return 0;
  const direct = codeByConstructor.get(value.constructor);
  if (direct === UINT8_DTYPE_CODE) return boolArrays.has(value) ? BOOL_DTYPE_CODE : direct;
  if (direct !== undefined) return direct;
  for (let index = 0; index < ownConstructors.length; index++) {
    if (value instanceof ownConstructors[index]!) return index + 1;
  }
  return 0;
}

/**
 * The typed array class a msgpack extension type of improv's codec carries (types 0..10, one per
 * TypeScript kind: dtype code - 1), or undefined for any other type (Map, Set, ArrayBuffer, numpy's
 * bool, timestamps), which the general codec decodes.
 */
export function typedArrayOfExtension(type: number): TypedArrayConstructor | undefined {
  return type >= 0 ? ownConstructors[type] : undefined;
}

/** The msgpack extension type of improv's codec for a typed array of dtype `code` (1..12). */
export function extensionTypeOf(code: number): number {
  return code === BOOL_DTYPE_CODE ? EXT_BOOL : code - 1;
}

/** Dtype code of a kind name, or 0 when the name is not a kind. */
export function dtypeCodeOfKind(kind: unknown): number {
  return typeof kind === 'string' ? (codeByKind.get(kind) ?? 0) : 0;
}

// Extension types 0..10 are the typed-array kinds (one type per kind, so the raw bytes go into the
// message without a tag byte and therefore without an extra copy); 11..13 keep Map, Set and
// ArrayBuffer, which msgpack would otherwise turn into `{}` without a word; 14 is numpy's bool array
// (one byte each), which Python sends and TypeScript reads as a Uint8Array; -1 is msgpack's own
// timestamp (Date).
const EXT_MAP = 11;
const EXT_SET = 12;
const EXT_ARRAY_BUFFER = 13;
const EXT_BOOL = 14;

/**
 * A value the codec refuses because it would arrive changed or could not be read back (an invalid
 * `Date`, an `Error`, a `RegExp`, a `__proto__` key, a string that is not valid UTF-8, a bigint
 * beyond 64 bits): its message names the value and says what to send instead. Links and stores
 * wrap it in their own error, with it as the `cause`.
 */
export class UnencodableValueError extends TypeError {
  override readonly name = 'UnencodableValueError';
}

/**
 * Why the codec could not encode a value, with the fix, for a link's or a store's error: the
 * message of an {@link UnencodableValueError} or of msgpack's depth limit; `undefined` for anything
 * else (msgpack's "Unrecognized object" of a function or a symbol), which the caller explains with
 * what it takes.
 */
export function encodeFailure(error: unknown): string | undefined {
  if (error instanceof UnencodableValueError) return error.message;
  const message = error instanceof Error ? error.message : '';
  if (/^Too deep objects in depth/.test(message)) {
    return 'it nests deeper than 100 levels, the most msgpack encodes: flatten it, or send it as a JSON string';
  }
  return undefined;
}

/**
 * Throws an {@link UnencodableValueError} for an object msgpack would write but not as it is: an
 * invalid `Date`, an `Error`, a `RegExp` (the codec checks every object it encodes with this).
 */
export function checkArrivesUnchanged(object: unknown): void {
  if (object instanceof Date) {
    if (Number.isNaN(object.getTime())) {
      throw new UnencodableValueError(
        'an invalid Date (new Date(NaN), or a string it could not parse) would arrive as 1970-01-01: check the value, or send null',
      );
    }
  } else if (object instanceof Error) {
    throw new UnencodableValueError(
      `the ${object.name || 'Error'} ${JSON.stringify(object.message)} would arrive as {} (its message and stack are not its own enumerable properties): send { name: error.name, message: error.message, stack: error.stack }`,
    );
  } else if (object instanceof RegExp) {
    throw new UnencodableValueError(
      `the RegExp ${String(object)} would arrive as {}: send { source: re.source, flags: re.flags } and build it again with new RegExp(source, flags)`,
    );
  }
}

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
      return new ExtData(extensionTypeOf(code), bytes);
    }
    if (object instanceof Map) return new ExtData(EXT_MAP, encoder.encode(Array.from(object)));
    if (object instanceof Set) return new ExtData(EXT_SET, encoder.encode(Array.from(object)));
    if (object instanceof ArrayBuffer) return new ExtData(EXT_ARRAY_BUFFER, new Uint8Array(object));
    checkArrivesUnchanged(object);
    return builtIn.tryToEncode(object, context);
  },
  decode(data, type, context) {
    const ctor = typedArrayOfExtension(type);
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
    if (type === EXT_BOOL) return ofDtype(BOOL_DTYPE_CODE, copyBytes(data));
    return builtIn.decode(data, type, context);
  },
};

/** A copy of `data` in memory of its own (a plain Uint8Array, whatever the class of `data`). */
function copyBytes(data: Uint8Array): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return copy;
}

/**
 * Options for `new Encoder()` / `new Decoder()` of @msgpack/msgpack: improv's extension types, so
 * typed arrays keep their kind and Map, Set and ArrayBuffer survive (plain msgpack turns them into
 * `{}`), and `useBigInt64`, so bigints are written as 64-bit integers. They cannot carry improv's
 * integer rule (see the module): with them a plain `Decoder` returns every 64-bit integer as a
 * bigint, and a plain `Encoder` writes an integer beyond 32 bits as a float. {@link MsgpackEncoder}
 * and {@link MsgpackDecoder} take the same options and follow the rule; every store and transport
 * uses them.
 */
export const msgpackOptions = { extensionCodec, useBigInt64: true } as const;

/** 2⁵³ / 2³²: a 64-bit integer whose high word (as a signed or unsigned 32-bit number) is below this in magnitude is safe. */
const SAFE_HIGH = 0x200000;
const TWO_32 = 0x100000000;

/** The members of @msgpack/msgpack 3's Decoder that the integer rule replaces or uses (private in its types). */
interface DecoderInternals {
  view: DataView;
  pos: number;
  clone(): Decoder<undefined>;
  readU64AsBigInt(): number | bigint;
  readI64AsBigInt(): number | bigint;
}

/** The members of @msgpack/msgpack 3's Encoder that the integer rule replaces or uses (private in its types). */
interface EncoderInternals {
  forceIntegerToFloat: boolean;
  clone(): Encoder<undefined>;
  encodeNumber(value: number): void;
  writeU8(value: number): void;
  writeU64(value: number): void;
  writeI64(value: number): void;
  writeF64(value: number): void;
  encodeBigInt64(value: bigint): void;
  encodeString(value: string): void;
  encodeMap(value: Record<string, unknown>, depth: number): void;
}

/**
 * @msgpack/msgpack's `Decoder` with improv's integer rule: a 64-bit integer decodes as a `number`
 * when it is a safe integer, as a `bigint` only beyond (a plain `Decoder` with `useBigInt64` returns
 * a bigint for every one). Options default to {@link msgpackOptions}; `useBigInt64` is always on.
 */
export class MsgpackDecoder extends Decoder<undefined> {
  constructor(options: DecoderOptions<undefined> = msgpackOptions) {
    super({ ...options, useBigInt64: true });
  }
}

/**
 * @msgpack/msgpack's `Encoder` with improv's integer rule: a `number` that is a safe integer outside
 * the 32-bit range is written as int 64 / uint 64 (a plain `Encoder` with `useBigInt64` writes a
 * float 64), so Python reads an int. Options default to {@link msgpackOptions}; `useBigInt64` is
 * always on.
 */
export class MsgpackEncoder extends Encoder<undefined> {
  constructor(options: EncoderOptions<undefined> = msgpackOptions) {
    super({ ...options, useBigInt64: true });
  }
}

// The rule replaces private methods of msgpack's classes, which a class body cannot declare again in
// TypeScript. codec.test.ts fails if a msgpack release renames them.
const decoderBase = Decoder.prototype as unknown as DecoderInternals;
const decoderRule = MsgpackDecoder.prototype as unknown as DecoderInternals;
if (typeof decoderBase.readU64AsBigInt !== 'function' || typeof decoderBase.readI64AsBigInt !== 'function') {
  throw new Error('@improv/core: this @msgpack/msgpack has no readU64AsBigInt/readI64AsBigInt to refine');
}
decoderRule.readU64AsBigInt = function (this: DecoderInternals): number | bigint {
  const { view, pos } = this;
  // Both words read before pos moves: a short buffer throws with pos where it was, as msgpack's own.
  const high = view.getUint32(pos);
  const low = view.getUint32(pos + 4);
  this.pos = pos + 8;
  return high < SAFE_HIGH ? high * TWO_32 + low : view.getBigUint64(pos);
};
decoderRule.readI64AsBigInt = function (this: DecoderInternals): number | bigint {
  const { view, pos } = this;
  const high = view.getInt32(pos);
  const low = view.getUint32(pos + 4);
  this.pos = pos + 8;
  if (high < SAFE_HIGH && high >= -SAFE_HIGH) {
    const value = high * TWO_32 + low;
    // -2⁵³ has a high word of -SAFE_HIGH too, and is not safe.
    if (value >= -Number.MAX_SAFE_INTEGER) return value;
  }
  return view.getBigInt64(pos);
};
// msgpack clones a decoder it re-enters (a Map inside a Map) as a plain Decoder: keep the rule.
decoderRule.clone = function (this: DecoderInternals): Decoder<undefined> {
  return Object.setPrototypeOf(decoderBase.clone.call(this), Object.getPrototypeOf(this)) as Decoder<undefined>;
};

const encoderBase = Encoder.prototype as unknown as EncoderInternals;
const encoderRule = MsgpackEncoder.prototype as unknown as EncoderInternals;
const encoderMembers = ['encodeNumber', 'writeU64', 'writeF64', 'encodeBigInt64', 'encodeString', 'encodeMap'] as const;
const missingMembers = encoderMembers.filter((name) => typeof encoderBase[name] !== 'function');
if (missingMembers.length > 0) {
  throw new Error(`@improv/core: this @msgpack/msgpack's Encoder has no ${missingMembers.join(', ')} to refine`);
}
encoderRule.encodeNumber = function (this: EncoderInternals, value: number): void {
  if (value === 0 && 1 / value < 0 && !this.forceIntegerToFloat) {
    // -0 is a safe integer to msgpack, which writes it as 0: a float 64 keeps its sign.
    this.writeU8(0xcb);
    this.writeF64(value);
    return;
  }
  if ((value >= TWO_32 || value < -0x80000000) && Number.isSafeInteger(value) && !this.forceIntegerToFloat) {
    if (value >= 0) {
      this.writeU8(0xcf); // uint 64
      this.writeU64(value);
    } else {
      this.writeU8(0xd3); // int 64
      this.writeI64(value);
    }
    return;
  }
  encoderBase.encodeNumber.call(this, value);
};
// msgpack's integers have 64 bits: a bigint beyond them would be written wrapped (2n ** 70n as 0).
const BIGINT_MIN = -(2n ** 63n);
const BIGINT_MAX = 2n ** 64n - 1n;
encoderRule.encodeBigInt64 = function (this: EncoderInternals, value: bigint): void {
  if (value < BIGINT_MIN || value > BIGINT_MAX) {
    throw new UnencodableValueError(
      `the bigint ${value} does not fit in msgpack's 64-bit integers (-2⁶³ … 2⁶⁴ − 1): send it as a string (String(value)) and parse it back with BigInt()`,
    );
  }
  encoderBase.encodeBigInt64.call(this, value);
};
encoderRule.encodeString = function (this: EncoderInternals, value: string): void {
  // A lone surrogate (half of an emoji, say) is no UTF-8: msgpack would write bytes that Python
  // refuses to decode.
  if (!value.isWellFormed()) {
    const at = [...value].findIndex((char) => !char.isWellFormed());
    throw new UnencodableValueError(
      `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)} has a lone surrogate (character ${at}), which is not UTF-8 and which Python cannot read: mend it, or send string.toWellFormed() (it becomes U+FFFD)`,
    );
  }
  encoderBase.encodeString.call(this, value);
};
encoderRule.encodeMap = function (this: EncoderInternals, value: Record<string, unknown>, depth: number): void {
  // An own "__proto__" key (JSON.parse makes one): the decoders refuse it, so it would never arrive.
  if (Object.hasOwn(value, '__proto__')) {
    throw new UnencodableValueError(
      'an object with an own "__proto__" key (JSON.parse of untrusted text makes one) cannot be decoded safely: rename the key, or send the JSON text itself',
    );
  }
  encoderBase.encodeMap.call(this, value, depth);
};
encoderRule.clone = function (this: EncoderInternals): Encoder<undefined> {
  return Object.setPrototypeOf(encoderBase.clone.call(this), Object.getPrototypeOf(this)) as Encoder<undefined>;
};

// The Map and Set extensions encode their entries with these (msgpack clones an instance when it
// is re-entered, so sharing them is safe).
const encoder = new MsgpackEncoder({ extensionCodec });
const decoder = new MsgpackDecoder({ extensionCodec });
