// The page's handling of frames (web/): decoding the server's msgpack without copying where it can,
// and colour-mapping integer frames through a table of the values they hold — the same pixels as
// mapping each value on its own.
import { msgpackOptions } from '@improv/core/codec';
import { Encoder } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { BufferPool, pageDecoder } from '../web/decode.ts';
import { compact } from '../web/format.ts';
import { lut, range, toPixels } from '../web/image.ts';
import { appendSeries, type SeriesData } from '../web/series.ts';

/** The colour of each value on its own (the mapping toPixels must match). */
function direct(array: ArrayLike<number>, min: number, max: number, table: Uint32Array): Uint32Array {
  const out = new Uint32Array(array.length);
  const scale = max > min ? 256 / (max - min) : 0;
  for (let index = 0; index < array.length; index++) {
    const level = (array[index]! - min) * scale;
    out[index] = table[level >= 255 ? 255 : level > 0 ? Math.floor(level) : 0]!;
  }
  return out;
}

/** Deterministic pseudo-random integers in [low, high]. */
function noise(length: number, low: number, high: number, seed = 1): number[] {
  let state = seed;
  return Array.from({ length }, () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return low + (state % (high - low + 1));
  });
}

describe('toPixels', () => {
  const table = lut('viridis');
  const cases: [string, ArrayLike<number> & { length: number }][] = [
    ['uint16, narrow', Uint16Array.from(noise(4096, 900, 1400))],
    ['uint16, full', Uint16Array.from(noise(70_000, 0, 65535))],
    ['uint8', Uint8Array.from(noise(1000, 3, 250))],
    ['int16 with negatives', Int16Array.from(noise(5000, -3000, 2000))],
    ['int8', Int8Array.from(noise(600, -128, 127))],
    ['float32', Float32Array.from(noise(3000, 0, 5000), (value) => value / 7)],
  ];
  for (const [name, array] of cases) {
    it(`gives each value its own colour: ${name}, automatic and fixed ranges`, () => {
      const values = range(array, array.length);
      const ranges: [number, number, { min: number; max: number } | undefined][] = [
        [values.min, values.max, values],
        [values.min + 100, values.max - 100, undefined],
        [-50, 10, undefined],
        [values.min, values.min, undefined],
      ];
      for (const [min, max, given] of ranges) {
        const out = new Uint32Array(array.length);
        toPixels(array, array.length, min, max, table, out, given);
        expect(out).toEqual(direct(array, min, max, table));
      }
    });
  }
});

describe('compact', () => {
  it('writes numbers in a few characters, past the billions as powers of ten', () => {
    expect([0, 3.2, 184, 12_400, 1_200_000, 3.5e9].map(compact)).toEqual([
      '0',
      '3.20',
      '184',
      '12.4k',
      '1.20M',
      '3.50G',
    ]);
    expect(compact(123_456_789_012_345)).toBe('1.23e14');
    expect(compact(-9.87e21)).toBe('-9.87e21');
  });
});

describe('values not finite', () => {
  it('leave the range of a frame or line, and are counted', () => {
    const values = Float32Array.from([3, Number.NaN, -2, Number.POSITIVE_INFINITY, 7, Number.NEGATIVE_INFINITY]);
    expect(range(values, values.length)).toEqual({ min: -2, max: 7, notFinite: 3 });
    expect(range([Number.NaN, Number.POSITIVE_INFINITY], 2)).toEqual({ min: 0, max: 0, notFinite: 2 });
    expect(range(Uint16Array.from([5, 1, 9]), 3)).toEqual({ min: 1, max: 9, notFinite: 0 });
  });

  it('are gaps in a series, counted while in its window', () => {
    const series: SeriesData = { times: [], fields: [], columns: new Map(), notFiniteAt: [], notFinite: 0 };
    appendSeries(series, [1000, 2000, 3000], { value: [1, Number.NaN, Number.POSITIVE_INFINITY] });
    expect(series.columns.get('value')).toEqual([1, null, null]);
    expect(series.notFinite).toBe(2);
    // A field absent from a delivery is a gap, not a value that was not finite.
    appendSeries(series, [4000], { other: [Number.NEGATIVE_INFINITY] });
    expect(series.columns.get('value')).toEqual([1, null, null, null]);
    expect(series.columns.get('other')).toEqual([null, null, null, null]);
    expect(series.notFinite).toBe(3);
    // A field one point lacked within a delivery (null) is a gap, not counted; its NaN is counted.
    appendSeries(series, [5000, 6000], { value: [null, Number.NaN], other: [2, null] });
    expect(series.columns.get('value')).toEqual([1, null, null, null, null, null]);
    expect(series.columns.get('other')).toEqual([null, null, null, null, 2, null]);
    expect(series.notFinite).toBe(4);
    // 40 s later the first six points have left the 30 s window, and their count with them.
    appendSeries(series, [44_000], { value: [5], other: [6] });
    expect(series.times).toEqual([44]);
    expect(series.notFinite).toBe(0);
  });
});

describe('pageDecoder', () => {
  const encoder = new Encoder(msgpackOptions);
  const frame = Uint16Array.from({ length: 64 * 1024 }, (_, index) => (index * 7) & 0xffff);
  /** A message whose frame starts at an even or an odd byte (the name before it is one byte longer or not). */
  const message = (name: string) =>
    encoder.encode({ type: 'plots', streams: [{ name, value: { array: frame, shape: [256, 256] } }] }).slice();
  const frameOf = (decoded: unknown) =>
    (decoded as { streams: { value: { array: Uint16Array } }[] }).streams[0]!.value.array;

  it('keeps typed arrays (aligned ones as views of the message, others copied) and their values', () => {
    const pool = new BufferPool();
    const decoder = pageDecoder(pool);
    const byAlignment = new Map<boolean, Uint16Array>();
    for (const name of ['a', 'ab']) {
      const bytes = message(name);
      const array = frameOf(decoder.decode(bytes));
      expect(array).toBeInstanceOf(Uint16Array);
      expect(array).toEqual(frame);
      byAlignment.set(array.buffer === bytes.buffer, array);
    }
    // One of the two names put the frame at an odd byte: that one was copied, the other is a view.
    expect([...byAlignment.keys()].sort()).toEqual([false, true]);
  });

  it('copies a misaligned array into a buffer given back to the pool, and into a new one otherwise', () => {
    const pool = new BufferPool();
    const decoder = pageDecoder(pool);
    const misaligned = ['a', 'ab']
      .map(message)
      .find((bytes) => frameOf(decoder.decode(bytes)).buffer !== bytes.buffer)!;
    const first = frameOf(decoder.decode(misaligned));
    const second = frameOf(decoder.decode(misaligned));
    expect(second.buffer).not.toBe(first.buffer);
    pool.release(first);
    const third = frameOf(decoder.decode(misaligned));
    expect(third.buffer).toBe(first.buffer);
    expect(third).toEqual(frame);
    // A view of a message is not the pool's: releasing it gives nothing back.
    const aligned = ['a', 'ab'].map(message).find((bytes) => frameOf(decoder.decode(bytes)).buffer === bytes.buffer)!;
    pool.release(frameOf(decoder.decode(aligned)));
    expect(frameOf(decoder.decode(misaligned)).buffer).not.toBe(first.buffer);
  });
});

describe('command buttons', () => {
  it('grey out setup and run while an actor has failed (the server refuses them), not pause, stop or quit', async () => {
    const { commandApplies } = await import('../web/states.ts');
    expect(commandApplies('run', 'ready')).toBe(true);
    expect(commandApplies('run', 'ready', true)).toBe(false);
    expect(commandApplies('setup', 'waiting', true)).toBe(false);
    expect(commandApplies('stop', 'running', true)).toBe(true);
    expect(commandApplies('pause', 'running', true)).toBe(true);
    expect(commandApplies('quit', 'ready', true)).toBe(true);
  });
});
