import { describe, expect, it } from 'vitest';
import { storeKeysIn } from '../src/store/keys.ts';

/** Keys of this store start with `k:`. */
const store = { isKey: (value: string) => value.startsWith('k:') };

describe('storeKeysIn finds every store key in a message, once each', () => {
  it('a flat message: its string fields that are keys, in field order, without repeats', () => {
    expect(storeKeysIn({ k: 'k:1', t: 3, name: 'frame', i: -1, again: 'k:1', b: 'k:2', n: null }, store)).toEqual([
      'k:1',
      'k:2',
    ]);
    expect(storeKeysIn({ t: 1, d: new Uint8Array(4) }, store)).toEqual([]);
    expect(storeKeysIn('k:9', store)).toEqual(['k:9']);
    expect(storeKeysIn('frame', store)).toEqual([]);
    expect(storeKeysIn(42, store)).toEqual([]);
    expect(storeKeysIn(null, store)).toEqual([]);
  });

  it('nested containers at any depth: arrays, objects, Map keys and values, Sets; cycles end', () => {
    const cyclic: Record<string, unknown> = { a: 'k:3' };
    cyclic.self = cyclic;
    const message = {
      k: 'k:1',
      nested: { frames: ['k:2', { deep: 'k:3' }], map: new Map([['k:4', 'k:5']]), set: new Set(['k:6', 'k:1']) },
      cyclic,
    };
    expect(storeKeysIn(message, store)).toEqual(['k:1', 'k:2', 'k:3', 'k:4', 'k:5', 'k:6']);
    expect(storeKeysIn(['k:7', ['k:8', 'k:7']], store)).toEqual(['k:7', 'k:8']);
  });

  it('own fields only, as Object.values sees them; an object of another class is searched too', () => {
    const withProto = Object.create({ inherited: 'k:0' }) as Record<string, unknown>;
    withProto.own = 'k:1';
    expect(storeKeysIn(withProto, store)).toEqual(['k:1']);
    class Frame {
      key = 'k:2';
    }
    expect(storeKeysIn({ frame: new Frame() }, store)).toEqual(['k:2']);
  });
});
