/**
 * The memory store's msgpack encoding (package-private): the shared codec from core, with the
 * store's own error messages.
 * @module
 */
import { msgpackOptions } from '@improv/core';
import { Decoder, Encoder } from '@msgpack/msgpack';

const encoder = new Encoder(msgpackOptions);
const decoder = new Decoder(msgpackOptions);

/**
 * Encodes `value` into the shared encoder buffer. The result is only valid until the next encode:
 * copy it into the store at once. Throws `TypeError` for values msgpack cannot represent.
 */
export function encodeShared(value: unknown): Uint8Array {
  try {
    return encoder.encodeSharedRef(value);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new TypeError(
      `memory store: cannot store a value of type ${describeType(value)}: ${reason}. Store typed arrays, or plain data that msgpack can encode (objects, arrays, strings, numbers, bigints, booleans, null, Date, Map, Set, typed arrays); functions and symbols cannot be stored`,
      { cause: error },
    );
  }
}

/** Decodes a msgpack value copied out of the store. */
export function decodeValue(bytes: Uint8Array): unknown {
  return decoder.decode(bytes);
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? name : 'object';
}
