/**
 * A fast path for the msgpack encoding of typical link messages (for the transports:
 * `@improv/core/codec/fast`, not part of the public API): small plain
 * objects and arrays of numbers, ASCII strings, booleans, `null` and typed arrays, such as
 * `{ k: storeKey, t, i }` or `{ t, v: Float32Array }`.
 *
 * The general codec (core's `MsgpackEncoder` and `MsgpackDecoder`) spends most of a message's cost
 * on machinery such messages do not need: every object is offered to each extension of the codec
 * first, every string goes through a general UTF-8 path, and each decode builds fresh views.
 * This fast path writes exactly the bytes that codec writes and reads them back to exactly the
 * values that codec returns; for anything else it declines, and the caller uses the general codec.
 * @module
 */

import { dtypeCodeOf, encodeFailure, extensionTypeOf, MsgpackEncoder, typedArrayOfExtension } from './codec.ts';

/** Returned by {@link FastDecoder.decode} for bytes it leaves to the general decoder. */
export const DECLINED: unique symbol = Symbol('declined');

/** Nesting handled here; deeper values (and cycles) go to the general codec and its depth limit. */
const MAX_DEPTH = 8;
/** Longest string handled here: up to `str 8` (the general codec's header for < 256 bytes). */
const MAX_STRING = 255;
/** Most bytes a number or a container header takes (float 64); checked before writing one. */
const MAX_NUMBER_BYTES = 9;
/** Encodings up to this size take the fast path; bigger ones are not typical link messages. */
const ENCODER_BYTES = 4096;
/**
 * Bytes after the head byte of each scalar format the fast decoder reads (0: not one of them): the
 * integers, float 32 and 64, and the length byte of `str 8`.
 */
const SCALAR_BYTES = new Uint8Array(256);
for (const [head, size] of [
  [0xca, 4],
  [0xcb, 8],
  [0xcc, 1],
  [0xcd, 2],
  [0xce, 4],
  [0xcf, 8],
  [0xd0, 1],
  [0xd1, 2],
  [0xd2, 4],
  [0xd3, 8],
  [0xd9, 1],
] as const) {
  SCALAR_BYTES[head] = size;
}
/** Most bytes before a typed array's data: `ext 16` head, two length bytes, the type. */
const EXT_HEADER_BYTES = 4;
/** The `fixext` heads by data size. */
const FIXEXT_HEAD: Partial<Record<number, number>> = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 };
/** Map keys up to this many bytes are cached, as the general decoder does. */
const MAX_CACHED_KEY = 16;
/** Entries of the key cache (a power of two): a stream carries few distinct keys. */
const KEY_CACHE_SIZE = 64;

/** An empty plain object: a `for…in` over it finds whatever enumerable property `Object.prototype` was given. */
const PLAIN: object = Object.freeze({});

/**
 * Whether no code has added an enumerable property to `Object.prototype`: then `for…in` over a plain
 * object sees exactly its own keys, in the order `Object.keys` gives them (and the general codec
 * writes), at a fifth less cost per message than building that array.
 */
function prototypeClean(): boolean {
  for (const _ in PLAIN) return false;
  return true;
}

/**
 * Encodes plain data into its own buffer: a plain object (`Object.prototype`) or array of fewer
 * than 16 entries, whose values are such containers or numbers, ASCII strings of up to 255
 * characters, booleans, `null`, `undefined` or typed arrays — byte for byte what the general
 * encoder writes.
 */
export class FastEncoder {
  /** The encoding of the last successful {@link encode}, in `bytes[0, length)`. */
  readonly bytes = new Uint8Array(ENCODER_BYTES);
  readonly #view = new DataView(this.bytes.buffer);
  #pos = 0;
  /** Set while encoding: a getter that puts on the same link meanwhile must not reuse the buffer. */
  #busy = false;

  /**
   * The byte length of `value`'s encoding (in {@link bytes} until the next call), or -1 when the
   * general encoder must encode it. A declined value may have had its getters called once already.
   */
  encode(value: unknown): number {
    if (this.#busy) return -1;
    this.#busy = true;
    try {
      this.#pos = 0;
      return prototypeClean() && this.#value(value, 0) ? this.#pos : -1;
    } finally {
      this.#busy = false;
    }
  }

  #value(value: unknown, depth: number): boolean {
    if (this.#pos + MAX_NUMBER_BYTES > ENCODER_BYTES) return false;
    switch (typeof value) {
      case 'number':
        this.#number(value);
        return true;
      case 'string':
        return this.#string(value);
      case 'boolean':
        this.bytes[this.#pos++] = value ? 0xc3 : 0xc2;
        return true;
      case 'undefined':
        this.bytes[this.#pos++] = 0xc0;
        return true;
      case 'object':
        if (value === null) {
          this.bytes[this.#pos++] = 0xc0;
          return true;
        }
        if (ArrayBuffer.isView(value)) return this.#typedArray(value);
        return depth < MAX_DEPTH && this.#container(value, depth + 1);
      default:
        return false;
    }
  }

  /**
   * A plain object or array. Only the exact prototypes: no extension of the general codec (typed
   * arrays, Map, Set, ArrayBuffer, Date) can claim an instance of them, so it would write a map or
   * an array too.
   */
  #container(value: object, depth: number): boolean {
    const prototype = Object.getPrototypeOf(value);
    if (prototype === Object.prototype) {
      // Own keys only: encode() checked that the prototype adds none.
      const head = this.#pos++;
      let count = 0;
      for (const key in value) {
        // The general codec refuses an own "__proto__" key with its reason.
        if (++count >= 16 || key === '__proto__') return false;
        if (!this.#string(key) || !this.#value((value as Record<string, unknown>)[key], depth)) return false;
      }
      this.bytes[head] = 0x80 | count;
      return true;
    }
    if (prototype === Array.prototype) {
      const array = value as unknown[];
      if (array.length >= 16) return false;
      this.bytes[this.#pos++] = 0x90 | array.length;
      for (let index = 0; index < array.length; index++) {
        if (!this.#value(array[index], depth)) return false;
      }
      return true;
    }
    return false;
  }

  /**
   * A typed array as the general codec writes it: an extension whose type is the array's kind
   * (core's `msgpackOptions`), holding its raw bytes — small vectors sent inline are common.
   * A DataView (plain binary there) is declined.
   */
  #typedArray(value: ArrayBufferView): boolean {
    const code = dtypeCodeOf(value);
    const size = value.byteLength;
    if (code === 0 || this.#pos + EXT_HEADER_BYTES + size > ENCODER_BYTES) return false;
    const bytes = this.bytes;
    let pos = this.#pos;
    const fixed = FIXEXT_HEAD[size];
    if (fixed !== undefined) {
      bytes[pos++] = fixed;
    } else if (size < 0x100) {
      bytes[pos++] = 0xc7;
      bytes[pos++] = size;
    } else {
      bytes[pos++] = 0xc8;
      this.#view.setUint16(pos, size);
      pos += 2;
    }
    bytes[pos++] = extensionTypeOf(code);
    // One-byte kinds copy as they are (int8 values wrap to the same bytes); for the others a byte
    // view of their memory (`.buffer` moves a small array off V8's heap once, then costs nothing).
    bytes.set(
      (value as Uint8Array).BYTES_PER_ELEMENT === 1
        ? (value as Uint8Array)
        : new Uint8Array(value.buffer, value.byteOffset, size),
      pos,
    );
    this.#pos = pos + size;
    return true;
  }

  /**
   * The general encoder's choice (core's `MsgpackEncoder`): the smallest integer format for a safe
   * integer — uint 64 / int 64 beyond 32 bits, so Python reads an int — else float 64.
   */
  #number(value: number): void {
    const bytes = this.bytes;
    const view = this.#view;
    let pos = this.#pos;
    // -0 too, as the general codec writes it: a float 64 keeps its sign.
    if (!Number.isSafeInteger(value) || (value === 0 && 1 / value < 0)) {
      bytes[pos++] = 0xcb;
      view.setFloat64(pos, value);
      pos += 8;
    } else if (value >= 0x100000000 || value < -0x80000000) {
      // Two 32-bit words: the high one floored (two's complement for a negative value), the low one
      // as its remainder.
      const high = Math.floor(value / 0x100000000);
      bytes[pos++] = value >= 0 ? 0xcf : 0xd3;
      view.setUint32(pos, high >>> 0);
      view.setUint32(pos + 4, value - high * 0x100000000);
      pos += 8;
    } else {
      if (value >= 0) {
        if (value < 0x80) {
          bytes[pos++] = value;
        } else if (value < 0x100) {
          bytes[pos++] = 0xcc;
          bytes[pos++] = value;
        } else if (value < 0x10000) {
          bytes[pos++] = 0xcd;
          view.setUint16(pos, value);
          pos += 2;
        } else {
          bytes[pos++] = 0xce;
          view.setUint32(pos, value);
          pos += 4;
        }
      } else if (value >= -0x20) {
        bytes[pos++] = value & 0xff;
      } else if (value >= -0x80) {
        bytes[pos++] = 0xd0;
        bytes[pos++] = value & 0xff;
      } else if (value >= -0x8000) {
        bytes[pos++] = 0xd1;
        view.setInt16(pos, value);
        pos += 2;
      } else {
        bytes[pos++] = 0xd2;
        view.setInt32(pos, value);
        pos += 4;
      }
    }
    this.#pos = pos;
  }

  /** An ASCII string (one byte per character in UTF-8), with the general encoder's header. */
  #string(value: string): boolean {
    const length = value.length;
    if (length > MAX_STRING || this.#pos + 2 + length > ENCODER_BYTES) return false;
    const bytes = this.bytes;
    let pos = this.#pos;
    if (length < 32) {
      bytes[pos++] = 0xa0 | length;
    } else {
      bytes[pos++] = 0xd9;
      bytes[pos++] = length;
    }
    for (let index = 0; index < length; index++) {
      const code = value.charCodeAt(index);
      if (code >= 0x80) return false;
      bytes[pos++] = code;
    }
    this.#pos = pos;
    return true;
  }
}

const NO_BYTES = new Uint8Array(0);
const NO_VIEW = new DataView(NO_BYTES.buffer);

/**
 * Decodes what {@link FastEncoder} writes, straight from the bytes (shared memory included: it
 * builds every value, so nothing it returns aliases them). It declines anything else — other
 * formats, non-ASCII strings, a `__proto__` key, trailing or missing bytes — and never throws, so
 * the general decoder produces the value or the error. It bounds every read by `end`, so garbage
 * (a record overwritten while read) yields some value or {@link DECLINED}, never a fault.
 */
export class FastDecoder {
  #bytes: Uint8Array = NO_BYTES;
  #view: DataView = NO_VIEW;
  #pos = 0;
  #end = 0;
  /** Recently decoded map keys by a hash of their bytes, so a key costs a compare, not a string. */
  readonly #keyBytes: (Uint8Array | undefined)[] = new Array(KEY_CACHE_SIZE).fill(undefined);
  readonly #keys: string[] = new Array(KEY_CACHE_SIZE).fill('');

  /**
   * The value encoded in `bytes[start, end)`, or {@link DECLINED}. `view` covers the same memory as
   * `bytes`, at the same offsets.
   */
  decode(bytes: Uint8Array, view: DataView, start: number, end: number): unknown {
    this.#bytes = bytes;
    this.#view = view;
    this.#pos = start;
    this.#end = end;
    const value = this.#value(0);
    // Not kept: the caller's memory is not held alive here until the next message.
    this.#bytes = NO_BYTES;
    this.#view = NO_VIEW;
    return this.#pos === end ? value : DECLINED;
  }

  #value(depth: number): unknown {
    if (this.#pos >= this.#end) return DECLINED;
    const head = this.#bytes[this.#pos++]!;
    if (head < 0x80) return head;
    if (head >= 0xe0) return head - 0x100;
    if (head >= 0xa0 && head < 0xc0) return this.#string(head & 0x1f);
    if (head < 0xa0) return depth < MAX_DEPTH ? this.#container(head, depth + 1) : DECLINED;
    if ((head >= 0xd4 && head <= 0xd8) || head === 0xc7 || head === 0xc8) return this.#typedArray(head);
    switch (head) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
    }
    const size = SCALAR_BYTES[head]!;
    const at = this.#pos;
    if (size === 0 || at + size > this.#end) return DECLINED;
    this.#pos = at + size;
    const view = this.#view;
    switch (head) {
      case 0xcb:
        return view.getFloat64(at);
      case 0xca:
        return view.getFloat32(at);
      case 0xcc:
        return view.getUint8(at);
      case 0xcd:
        return view.getUint16(at);
      case 0xce:
        return view.getUint32(at);
      case 0xd0:
        return view.getInt8(at);
      case 0xd1:
        return view.getInt16(at);
      case 0xd2:
        return view.getInt32(at);
      case 0xcf: {
        // As core's MsgpackDecoder: a number when safe (high word below 2²¹), else a bigint.
        const high = view.getUint32(at);
        return high < 0x200000 ? high * 0x100000000 + view.getUint32(at + 4) : view.getBigUint64(at);
      }
      case 0xd3: {
        const high = view.getInt32(at);
        if (high < 0x200000 && high >= -0x200000) {
          const value = high * 0x100000000 + view.getUint32(at + 4);
          if (value >= -Number.MAX_SAFE_INTEGER) return value;
        }
        return view.getBigInt64(at);
      }
      default:
        // 0xd9, str 8: the byte read is the string's length.
        return this.#string(view.getUint8(at));
    }
  }

  /** An extension of a typed-array kind (fixext 1–16, ext 8, ext 16), copied out of `bytes`. */
  #typedArray(head: number): unknown {
    let size: number;
    let at = this.#pos;
    if (head === 0xc7) {
      if (at + 1 > this.#end) return DECLINED;
      size = this.#bytes[at++]!;
    } else if (head === 0xc8) {
      if (at + 2 > this.#end) return DECLINED;
      size = this.#view.getUint16(at);
      at += 2;
    } else {
      size = 1 << (head - 0xd4);
    }
    if (at + 1 + size > this.#end) return DECLINED;
    // Types 0..10 only: 11 and up are Map, Set, ArrayBuffer and numpy's bool, the general codec's.
    const ctor = typedArrayOfExtension(this.#bytes[at]!);
    at++;
    if (ctor === undefined || size % ctor.BYTES_PER_ELEMENT !== 0) return DECLINED;
    this.#pos = at + size;
    // An array of its own, never a view of the ring. A fresh ArrayBuffer rather than `.buffer` of a
    // fresh small array, which would move it off V8's heap.
    const memory = ctor === Uint8Array ? undefined : new ArrayBuffer(size);
    const target = memory === undefined ? new Uint8Array(size) : new Uint8Array(memory);
    target.set(this.#bytes.subarray(at, at + size));
    return memory === undefined ? target : new ctor(memory, 0, size / ctor.BYTES_PER_ELEMENT);
  }

  /** A fixmap (`0x80`–`0x8f`) or fixarray (`0x90`–`0x9f`), built as the general decoder builds it. */
  #container(head: number, depth: number): unknown {
    if (head >= 0x90) {
      const array = new Array<unknown>(head & 0x0f);
      for (let index = 0; index < array.length; index++) {
        const value = this.#value(depth);
        if (value === DECLINED) return DECLINED;
        array[index] = value;
      }
      return array;
    }
    const map: Record<string, unknown> = {};
    for (let count = head & 0x0f; count > 0; count--) {
      const key = this.#key();
      if (key === undefined) return DECLINED;
      const value = this.#value(depth);
      if (value === DECLINED) return DECLINED;
      map[key] = value;
    }
    return map;
  }

  /** A map key: an ASCII string other than `__proto__` (which the general decoder refuses). */
  #key(): string | undefined {
    if (this.#pos >= this.#end) return undefined;
    const head = this.#bytes[this.#pos++]!;
    let length: number;
    if (head >= 0xa0 && head < 0xc0) {
      length = head & 0x1f;
    } else if (head === 0xd9 && this.#pos < this.#end) {
      length = this.#bytes[this.#pos++]!;
    } else {
      return undefined;
    }
    const start = this.#pos;
    if (length > MAX_CACHED_KEY || start + length > this.#end) {
      const key = this.#string(length);
      return key === DECLINED || key === '__proto__' ? undefined : key;
    }
    const bytes = this.#bytes;
    let hash = length;
    for (let index = start; index < start + length; index++) hash = (hash * 31 + bytes[index]!) | 0;
    const slot = hash & (KEY_CACHE_SIZE - 1);
    const cached = this.#keyBytes[slot];
    if (cached !== undefined && cached.length === length && sameBytes(cached, bytes, start)) {
      this.#pos = start + length;
      return this.#keys[slot];
    }
    const key = this.#string(length);
    if (key === DECLINED || key === '__proto__') return undefined;
    // The cached bytes come from the string, not from `bytes` again: a record being overwritten
    // (drop-oldest) could read differently the second time, and the entry must stay consistent.
    const keyBytes = new Uint8Array(length);
    for (let index = 0; index < length; index++) keyBytes[index] = key.charCodeAt(index);
    this.#keyBytes[slot] = keyBytes;
    this.#keys[slot] = key;
    return key;
  }

  /** `length` bytes of ASCII, or {@link DECLINED} (other UTF-8 is left to the general decoder). */
  #string(length: number): string | typeof DECLINED {
    const start = this.#pos;
    if (start + length > this.#end) return DECLINED;
    const bytes = this.#bytes;
    // A fresh array of the exact length: resizing one shared array costs more than allocating.
    const codes = new Array<number>(length);
    for (let index = 0; index < length; index++) {
      const byte = bytes[start + index]!;
      if (byte >= 0x80) return DECLINED;
      codes[index] = byte;
    }
    this.#pos = start + length;
    return String.fromCharCode.apply(null, codes);
  }
}

function sameBytes(cached: Uint8Array, bytes: Uint8Array, start: number): boolean {
  for (let index = 0; index < cached.length; index++) {
    if (cached[index] !== bytes[start + index]) return false;
  }
  return true;
}

/**
 * A link's encoder of messages: the fast path for typical ones, the general codec for the rest
 * (the same bytes either way). A message that msgpack cannot carry (a function, a symbol) or that
 * would arrive changed (core's `UnencodableValueError`: an invalid Date, a bigint beyond 64 bits, …)
 * throws a `TypeError` that names the link and says what to send instead.
 */
export class MessageEncoder {
  readonly #fast = new FastEncoder();
  #general = new MsgpackEncoder();
  readonly #label: string;

  /** @param label the link's name, for errors. */
  constructor(label: string) {
    this.#label = label;
  }

  /** The message's msgpack bytes, as a view of this encoder's own memory, valid until its next call. */
  encode(message: unknown): Uint8Array {
    try {
      const length = this.#fast.encode(message);
      return length >= 0 ? this.#fast.bytes.subarray(0, length) : this.#general.encodeSharedRef(message);
    } catch (error) {
      const reason =
        encodeFailure(error) ??
        `${error instanceof Error ? error.message : String(error)}. Send plain data (numbers, strings, booleans, null, arrays, objects, typed arrays, Map, Set, Date); put anything else in the store as such data and send its key`;
      throw new TypeError(`link "${this.#label}": the message cannot be sent: ${reason}`, { cause: error });
    }
  }

  /** Lets go of the memory the general codec grew to for a huge message (one the link refused). */
  shrink(): void {
    this.#general = new MsgpackEncoder();
  }
}
