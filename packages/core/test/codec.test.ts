import { Decoder, Encoder, ExtData } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import {
  BOOL_DTYPE_CODE,
  dtypeCodeOf,
  encodeFailure,
  MsgpackDecoder,
  MsgpackEncoder,
  msgpackOptions,
  typedArrayConstructors,
  typedArrayKinds,
  UnencodableValueError,
} from '../src/codec.ts';

const encoder = new MsgpackEncoder();
const decoder = new MsgpackDecoder();
const roundTrip = (value: unknown) => decoder.decode(encoder.encode(value));
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const fromHex = (text: string) => new Uint8Array(Buffer.from(text, 'hex'));

describe('integers beyond 32 bits', () => {
  it('decodes a 64-bit integer within the safe range as a number, beyond it as a bigint', () => {
    // What Python's msgpack writes for 2**32 + 1, int(time.time() * 1000) and -(2**40).
    expect(decoder.decode(fromHex('cf0000000100000001'))).toBe(2 ** 32 + 1);
    expect(decoder.decode(fromHex('cf000001a24cd4267d'))).toBe(1_796_585_301_629);
    expect(decoder.decode(fromHex('d3ffffff0000000000'))).toBe(-(2 ** 40));
    expect(decoder.decode(fromHex('cf0000000000000005'))).toBe(5);
    expect(decoder.decode(fromHex('d3fffffffffffffffb'))).toBe(-5);
    expect(decoder.decode(fromHex('cf001fffffffffffff'))).toBe(Number.MAX_SAFE_INTEGER);
    expect(decoder.decode(fromHex('d3ffe0000000000001'))).toBe(-Number.MAX_SAFE_INTEGER);
    // Beyond 2**53 - 1: exact, so a bigint.
    expect(decoder.decode(fromHex('cf0020000000000000'))).toBe(2n ** 53n);
    expect(decoder.decode(fromHex('cf0020000000000001'))).toBe(2n ** 53n + 1n);
    expect(decoder.decode(fromHex('cf7fffffffffffffff'))).toBe(2n ** 63n - 1n);
    expect(decoder.decode(fromHex('cfffffffffffffffff'))).toBe(2n ** 64n - 1n);
    expect(decoder.decode(fromHex('d3ffe0000000000000'))).toBe(-(2n ** 53n));
    expect(decoder.decode(fromHex('d38000000000000000'))).toBe(-(2n ** 63n));
    // Also inside a Map (a re-entered decoder is a clone) and a message like a Python actor's.
    expect(roundTrip(new Map([[1, new Map([[2, 2 ** 40]])]]))).toEqual(new Map([[1, new Map([[2, 2 ** 40]])]]));
    const now = Date.now();
    expect(Date.now() - (roundTrip({ t: now }) as { t: number }).t).toBeGreaterThanOrEqual(0);
  });

  it('writes a safe integer outside the 32-bit range as int 64 / uint 64, so Python reads an int', () => {
    expect(hex(encoder.encode(2 ** 32 + 1))).toBe('cf0000000100000001');
    expect(hex(encoder.encode(2 ** 40))).toBe('cf0000010000000000');
    expect(hex(encoder.encode(Number.MAX_SAFE_INTEGER))).toBe('cf001fffffffffffff');
    expect(hex(encoder.encode(-(2 ** 31) - 1))).toBe('d3ffffffff7fffffff');
    expect(hex(encoder.encode(-(2 ** 40)))).toBe('d3ffffff0000000000');
    // Up to 32 bits the smallest format, beyond the safe range and fractions a float, as before.
    expect(hex(encoder.encode(2 ** 32 - 1))).toBe('ceffffffff');
    expect(hex(encoder.encode(-(2 ** 31)))).toBe('d280000000');
    expect(hex(encoder.encode(2 ** 53))).toBe('cb4340000000000000');
    expect(hex(encoder.encode(1.5))).toBe('cb3ff8000000000000');
    // Bigints stay 64-bit integers; within the safe range they come back as numbers.
    expect(hex(encoder.encode(5n))).toBe('cf0000000000000005');
    expect(roundTrip(5n)).toBe(5);
    expect(roundTrip(-(2n ** 40n))).toBe(-(2 ** 40));
    for (const value of [2 ** 40, Date.now(), -Date.now(), Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]) {
      expect(roundTrip(value)).toBe(value);
    }
    for (const value of [2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n]) {
      expect(roundTrip(value)).toBe(value);
    }
    // Typed arrays of bigints are raw typed arrays, unaffected.
    expect(roundTrip(new BigInt64Array([5n, -(2n ** 63n)]))).toEqual(new BigInt64Array([5n, -(2n ** 63n)]));
  });

  it('refuses what would arrive changed or not at all (invalid Date, Error, RegExp, "__proto__" key, lone surrogate), saying what to send', () => {
    const encoder = new MsgpackEncoder();
    const refused: [unknown, string][] = [
      [new Date('not a date'), 'would arrive as 1970-01-01'],
      [{ at: new Date(Number.NaN) }, 'or send null'],
      [new TypeError('boom'), 'the TypeError "boom" would arrive as {}'],
      [[new Error('boom')], 'error.message'],
      [/a+b/g, 'the RegExp /a+b/g would arrive as {}'],
      [JSON.parse('{"__proto__": {"gain": 2}, "id": 1}'), 'own "__proto__" key'],
      [{ nested: JSON.parse('{"__proto__": 1}') }, 'rename the key'],
      ['half an emoji: \ud83d', 'lone surrogate (character 15)'],
      [{ ['key \udc00']: 1 }, 'lone surrogate'],
    ];
    for (const [value, text] of refused) {
      expect(() => encoder.encode(value)).toThrow(UnencodableValueError);
      expect(() => encoder.encode(value)).toThrow(text);
    }
    // What is valid still goes: a whole emoji, a valid Date, a key that only looks alike.
    expect(roundTrip(['😀', new Date(5), { proto: 1 }])).toEqual(['😀', new Date(5), { proto: 1 }]);
  });

  it('keeps the sign of -0 (a float 64), where msgpack alone writes 0', () => {
    expect(hex(encoder.encode(-0))).toBe('cb8000000000000000');
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    expect(Object.is((roundTrip({ v: [-0] }) as { v: number[] }).v[0], -0)).toBe(true);
    expect(hex(encoder.encode(0))).toBe('00');
  });

  it("names msgpack's depth limit and the fix", () => {
    const deep = JSON.parse(`${'['.repeat(150)}${']'.repeat(150)}`);
    let error: unknown;
    try {
      encoder.encode(deep);
    } catch (caught) {
      error = caught;
    }
    expect(encodeFailure(error)).toContain('deeper than 100 levels');
    expect(encodeFailure(new Error('Unrecognized object: [object Function]'))).toBeUndefined();
  });

  it('refuses a bigint beyond 64 bits, naming it and the fix, instead of writing it wrapped', () => {
    const encoder = new MsgpackEncoder();
    for (const value of [2n ** 64n, 2n ** 70n, -(2n ** 63n) - 1n]) {
      expect(() => encoder.encode(value)).toThrow(UnencodableValueError);
      expect(() => encoder.encode({ nested: [1, value] })).toThrow(
        `the bigint ${value} does not fit in msgpack's 64-bit integers (-2⁶³ … 2⁶⁴ − 1): send it as a string (String(value))`,
      );
    }
    // The encoder is still usable afterwards.
    expect(new MsgpackDecoder().decode(encoder.encode({ ok: 2n ** 64n - 1n }))).toEqual({ ok: 2n ** 64n - 1n });
  });

  it('keeps the rule with options of its own, and msgpackOptions still serve a plain Decoder', () => {
    const withUndefined = new MsgpackEncoder({ ...msgpackOptions, ignoreUndefined: true });
    expect(
      new MsgpackDecoder({ ...msgpackOptions }).decode(withUndefined.encode({ t: 2 ** 40, u: undefined })),
    ).toEqual({
      t: 2 ** 40,
    });
    const plain = new Decoder(msgpackOptions);
    expect(plain.decode(new Encoder(msgpackOptions).encode(new Float32Array([1.5])))).toEqual(new Float32Array([1.5]));
    expect(plain.decode(fromHex('cf0000000100000001'))).toBe(2n ** 32n + 1n);
  });
});

describe('the codec (MsgpackEncoder, MsgpackDecoder with msgpackOptions)', () => {
  it('keeps every typed array kind, with its values, as its own extension type', () => {
    typedArrayConstructors.slice(0, BOOL_DTYPE_CODE - 1).forEach((ctor, index) => {
      const array = new ctor(4);
      for (let i = 0; i < 4; i++)
        (array as { [i: number]: number | bigint })[i] =
          ctor.BYTES_PER_ELEMENT === 8 && /Big/.test(ctor.name) ? BigInt(i + 1) : i + 1;
      const bytes = encoder.encode(array);
      // fixext/ext header: the type byte is the kind's index.
      expect(bytes.includes(index), typedArrayKinds[index]).toBe(true);
      const back = decoder.decode(bytes);
      expect(back).toBeInstanceOf(ctor);
      expect(Array.from(back as ArrayLike<unknown>)).toEqual(Array.from(array as ArrayLike<unknown>));
    });
  });

  it("reads numpy's bool array (extension type 14, as Python sends it) as a Uint8Array, sends it on as bool, and a Uint8Array of its own as uint8", () => {
    const fromPython = new Encoder().encode(new ExtData(14, Uint8Array.of(1, 0, 1)));
    const back = decoder.decode(fromPython);
    expect(back).toBeInstanceOf(Uint8Array);
    expect(Array.from(back as Uint8Array)).toEqual([1, 0, 1]);
    // Its own memory, not a view of the message.
    expect((back as Uint8Array).buffer.byteLength).toBe(3);
    expect(typedArrayKinds[BOOL_DTYPE_CODE - 1]).toBe('bool');
    // Passed on as it came (a mask through a TypeScript actor): bool again, type 14.
    expect(dtypeCodeOf(back)).toBe(BOOL_DTYPE_CODE);
    expect(encoder.encode(back)).toEqual(fromPython);
    expect(encoder.encode({ mask: back })).toEqual(
      new Encoder().encode({ mask: new ExtData(14, Uint8Array.of(1, 0, 1)) }),
    );
    // A copy, or bytes of its own, are uint8.
    expect(encoder.encode((back as Uint8Array).slice())[2]).toBe(1); // ext8, 3 bytes, type 1: uint8
    expect(encoder.encode(Uint8Array.of(1, 0))[1]).toBe(1); // fixext2, type 1: uint8
  });

  it('sends a view of part of a buffer as just that part, and a Buffer as a Uint8Array', () => {
    const whole = Float32Array.from([1, 2, 3, 4, 5]);
    expect(roundTrip(whole.subarray(1, 3))).toEqual(Float32Array.from([2, 3]));
    const buffer = Buffer.from([7, 8, 9]);
    const back = roundTrip(buffer);
    expect(back).toBeInstanceOf(Uint8Array);
    expect(Array.from(back as Uint8Array)).toEqual([7, 8, 9]);
    expect(roundTrip(new Uint8ClampedArray([1, 255]))).toBeInstanceOf(Uint8ClampedArray);
  });

  it('decodes typed arrays into memory of their own also from a Node Buffer (whose slice() is a view)', () => {
    const bytes = Buffer.from(encoder.encode({ a: Float64Array.from([1.5, -2]), b: new ArrayBuffer(3) }));
    const back = decoder.decode(bytes) as { a: Float64Array; b: ArrayBuffer };
    bytes.fill(0); // the message's memory reused: the decoded values must not change
    expect(Array.from(back.a)).toEqual([1.5, -2]);
    expect(back.a.buffer.byteLength).toBe(16);
    expect(back.b.byteLength).toBe(3);
  });

  it('keeps Map, Set, ArrayBuffer, Date and bigint, also nested', () => {
    const date = new Date('2026-11-25T10:00:00.123Z');
    const value = {
      map: new Map<unknown, unknown>([
        ['a', 1],
        [2, new Set([1, 2])],
      ]),
      buffer: new Uint8Array([1, 2, 3]).buffer,
      date,
      big: 2n ** 63n - 1n,
      list: [new Int16Array([-1, 1]), { deep: new Map([['x', new Float64Array([0.5])]]) }],
    };
    const back = roundTrip(value) as typeof value;
    expect(back.map).toEqual(value.map);
    expect(back.buffer).toBeInstanceOf(ArrayBuffer);
    expect(Array.from(new Uint8Array(back.buffer))).toEqual([1, 2, 3]);
    expect(back.date).toEqual(date);
    expect(back.big).toBe(value.big);
    expect(back.list[0]).toEqual(new Int16Array([-1, 1]));
    expect((back.list[1] as { deep: Map<string, Float64Array> }).deep.get('x')).toEqual(new Float64Array([0.5]));
  });

  it('stores a DataView as plain binary and leaves unknown extension types as ExtData', () => {
    const back = roundTrip(new DataView(new Uint8Array([4, 5]).buffer));
    expect(back).toBeInstanceOf(Uint8Array);
    expect(Array.from(back as Uint8Array)).toEqual([4, 5]);
    const unknown = roundTrip(new ExtData(42, new Uint8Array([1])));
    expect(unknown).toBeInstanceOf(ExtData);
    expect((unknown as ExtData).type).toBe(42);
  });

  it('refuses a typed array whose byte length does not fit its kind', () => {
    const bytes = encoder.encode(new ExtData(7 /* float32 */, new Uint8Array(6)));
    expect(() => decoder.decode(bytes)).toThrow(
      /corrupt float32 array in a message \(6 bytes is not a multiple of 4\)/,
    );
  });
});
