import { Decoder, Encoder, ExtData } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { msgpackOptions, typedArrayConstructors, typedArrayKinds } from '../src/codec.ts';

const encoder = new Encoder(msgpackOptions);
const decoder = new Decoder(msgpackOptions);
const roundTrip = (value: unknown) => decoder.decode(encoder.encode(value));

describe('msgpackOptions', () => {
  it('keeps every typed array kind, with its values, as its own extension type', () => {
    typedArrayConstructors.forEach((ctor, index) => {
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
