/**
 * What the three stores share about values (package-private): the msgpack encoding (core's codec,
 * with the store's own error message) and the checks of a shape or a length. Each function takes the
 * store's name (`memory store`, …) for its messages.
 * @module
 */
import { encodeFailure, MsgpackDecoder, MsgpackEncoder } from '@improv/core';

/** Most dimensions a stored array may have. */
export const MAX_DIMENSIONS = 32;
/** Most elements a stored array (or one of its dimensions) may have. */
export const MAX_ELEMENTS = 2 ** 32;

const encoder = new MsgpackEncoder();
const decoder = new MsgpackDecoder();

/**
 * Encodes `value` into the shared encoder buffer. The result is only valid until the next encode:
 * copy it into the store at once. Throws `TypeError` for values msgpack cannot represent.
 */
export function encodeShared(value: unknown, store: string): Uint8Array {
  try {
    return encoder.encodeSharedRef(value);
  } catch (error) {
    throw unstorable(value, error, store);
  }
}

/** Encodes `value` into bytes of its own (which may outlive the next encode); else as {@link encodeShared}. */
export function encodeOwn(value: unknown, store: string): Uint8Array {
  try {
    return encoder.encode(value);
  } catch (error) {
    throw unstorable(value, error, store);
  }
}

/** Decodes a msgpack value. */
export function decodeValue(bytes: Uint8Array): unknown {
  return decoder.decode(bytes);
}

function unstorable(value: unknown, error: unknown, store: string): TypeError {
  const reason =
    encodeFailure(error) ??
    `${error instanceof Error ? error.message : String(error)}. Store typed arrays, or plain data that msgpack can encode (objects, arrays, strings, numbers, bigints, booleans, null, Date, Map, Set, typed arrays); functions and symbols cannot be stored`;
  return new TypeError(`${store}: cannot store a value of type ${describeType(value)}: ${reason}`, { cause: error });
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? name : 'object';
}

/** Checks a length or one dimension of a shape: an integer from 0 to 2^32. */
export function checkDimension(size: unknown, what: string, method: string, store: string): void {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || size > MAX_ELEMENTS) {
    throw new RangeError(`${store}: ${method}: ${what} must be an integer from 0 to 2^32, got ${String(size)}`);
  }
}

/** Validates a shape; returns the product. With `length`, the product must equal it. */
export function checkShape(
  shape: readonly number[],
  length: number | undefined,
  method: string,
  store: string,
): number {
  if (!Array.isArray(shape)) {
    throw new TypeError(`${store}: ${method}: shape must be an array of lengths, got ${typeof shape}`);
  }
  if (shape.length > MAX_DIMENSIONS) {
    throw new RangeError(`${store}: ${method}: shape [${shape.join(', ')}] has over ${MAX_DIMENSIONS} dimensions`);
  }
  let product = 1;
  for (const size of shape) {
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || size > MAX_ELEMENTS) {
      // The message is built only on failure: this runs on every put and allocate with a shape.
      checkDimension(size, `every dimension of shape [${shape.join(', ')}]`, method, store);
    }
    product *= size;
  }
  if (length !== undefined && product !== length) {
    throw new RangeError(
      `${store}: ${method}: shape [${shape.join(', ')}] holds ${product} elements but the array has length ${length}; pass a shape whose product is the length`,
    );
  }
  if (product > MAX_ELEMENTS) {
    throw new RangeError(`${store}: ${method}: shape [${shape.join(', ')}] holds over 2^32 elements`);
  }
  return product;
}
