import { typedArrayConstructors } from '@improv/core';
import { describe, expect, it } from 'vitest';
import { LocalArrays, SLAB_BYTES, SLAB_MAX_ARRAY_BYTES } from '../src/_local-arrays.ts';

describe('LocalArrays (the arrays a copying driver hands out from allocate())', () => {
  it('gives zeroed arrays of every dtype, aligned, each its own memory', () => {
    const arrays = new LocalArrays();
    const taken = [];
    for (let round = 0; round < 3; round++) {
      for (const [index, ctor] of typedArrayConstructors.entries()) {
        const array = arrays.take(index + 1, 3 + round);
        expect(array).toBeInstanceOf(ctor);
        expect(array.length).toBe(3 + round);
        expect(array.byteOffset % 8).toBe(0);
        expect(Array.from(array, Number)).toEqual(new Array(3 + round).fill(0));
        taken.push(array);
      }
    }
    // Writing every byte of each leaves all the others as they were.
    for (const [index, array] of taken.entries())
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength).fill(index + 1);
    for (const [index, array] of taken.entries()) {
      expect(new Set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength))).toEqual(new Set([index + 1]));
    }
  });

  it('shares a slab among small arrays only, and starts a new one when it is full', () => {
    const arrays = new LocalArrays();
    const small = SLAB_MAX_ARRAY_BYTES;
    const perSlab = SLAB_BYTES / small;
    const first = Array.from({ length: perSlab + 1 }, () => arrays.take(2, small));
    expect(new Set(first.slice(0, perSlab).map((array) => array.buffer)).size).toBe(1);
    expect(first[perSlab]!.buffer).not.toBe(first[0]!.buffer);
    expect(first[perSlab]!.byteOffset).toBe(0);
    // A larger array, and an empty one, get a buffer of their own.
    const large = arrays.take(2, small + 1);
    expect(large.byteOffset).toBe(0);
    expect(large.buffer.byteLength).toBe(small + 1);
    expect(arrays.take(9, 0).buffer.byteLength).toBe(0);
  });
});
