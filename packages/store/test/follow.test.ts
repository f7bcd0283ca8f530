import type { StoreKey, TypedArray } from '@improv/core';
import { describe, expect, it } from 'vitest';
import { type Followed, FollowedArrays, MAX_FOLLOWED, OLDER_BUDGET_BYTES } from '../src/_follow.ts';

function entry(array: TypedArray): Followed {
  return { ref: new WeakRef(array), code: 1, shape: [array.length], byteLength: array.byteLength };
}

describe('FollowedArrays (what a copying driver writes again at flush)', () => {
  it(`follows at most ${MAX_FOLLOWED} arrays, dropping the oldest and telling the driver`, () => {
    const dropped: Followed[] = [];
    const followed = new FollowedArrays((gone) => dropped.push(gone));
    const arrays = Array.from({ length: MAX_FOLLOWED + 2 }, () => new Uint8Array(8));
    for (const [index, array] of arrays.entries()) followed.follow(`k${index}` as StoreKey, entry(array));
    expect(followed.size).toBe(MAX_FOLLOWED);
    expect(followed.keys()[0]).toBe('k2');
    expect(dropped.map((gone) => gone.ref.deref())).toEqual([arrays[0], arrays[1]]);
    expect(followed.alive().map(({ key }) => key)).toEqual(followed.keys());
  });

  it('always follows the newest, whatever its size, and older ones within the byte budget', () => {
    const followed = new FollowedArrays();
    const huge = new Uint8Array(OLDER_BUDGET_BYTES + 1);
    followed.follow('huge' as StoreKey, entry(huge));
    expect(followed.keys()).toEqual(['huge']);
    followed.follow('small' as StoreKey, entry(new Uint8Array(16))); // huge is older now, and over
    expect(followed.keys()).toEqual(['small']);
    const half = new Uint8Array(OLDER_BUDGET_BYTES / 2);
    followed.follow('a' as StoreKey, entry(half));
    followed.follow('b' as StoreKey, entry(half)); // small + a + 16 B over half: still within
    followed.follow('c' as StoreKey, entry(new Uint8Array(64))); // small + a + b is over the budget
    expect(followed.keys()).toEqual(['a', 'b', 'c']);
  });

  it('following a key again makes it the newest; forget and clear stop following', () => {
    const dropped: Followed[] = [];
    const followed = new FollowedArrays((gone) => dropped.push(gone));
    const first = new Float64Array(2);
    followed.follow('x' as StoreKey, entry(first));
    followed.follow('y' as StoreKey, entry(new Float64Array(2)));
    followed.follow('x' as StoreKey, entry(first));
    expect(followed.keys()).toEqual(['y', 'x']);
    expect(dropped).toHaveLength(1); // the entry x replaced
    followed.forget('y' as StoreKey);
    followed.forget('nosuch' as StoreKey);
    expect(followed.keys()).toEqual(['x']);
    expect(dropped).toHaveLength(2);
    followed.clear();
    expect(followed.size).toBe(0);
  });
});
