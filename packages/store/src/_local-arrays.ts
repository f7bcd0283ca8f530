/**
 * The process-local arrays a copying driver (lmdb, redis) hands out from `allocate()`
 * (package-private). Each is zeroed, as a new typed array is. A small one is a view into a shared
 * slab rather than an `ArrayBuffer` of its own: a source that allocates a frame per message
 * otherwise makes V8 create, track, mark and sweep one buffer (and the allocator one block) per
 * message, which costs more than writing the value into LMDB (8.7 µs of 15.5 µs per 4 KiB
 * allocation, flushed 64 at a time). The price: a slab lives while any of its arrays does, so an
 * actor that keeps one small array keeps at most {@link SLAB_BYTES} alive for it.
 * @module
 */
import { type TypedArray, typedArrayConstructors } from '@improv/core';

/** Bytes of one slab. */
export const SLAB_BYTES = 64 * 1024;
/** Arrays up to this many bytes come from a slab (at least 8 fit in one); larger ones get a buffer of their own. */
export const SLAB_MAX_ARRAY_BYTES = 8 * 1024;

/** Carves zeroed typed arrays out of slabs; one per client. */
export class LocalArrays {
  private slab: ArrayBuffer | undefined;
  private used = SLAB_BYTES;

  /** A zeroed typed array of dtype `code` (1-based, as `typedArrayConstructors`) and `length` elements. */
  take(code: number, length: number): TypedArray {
    const ctor = typedArrayConstructors[code - 1]!;
    const byteLength = length * ctor.BYTES_PER_ELEMENT;
    if (byteLength > SLAB_MAX_ARRAY_BYTES || byteLength === 0) return new ctor(length);
    if (this.used + byteLength > SLAB_BYTES) {
      // A fresh slab (zeroed); the last one lives on in the arrays taken from it.
      this.slab = new ArrayBuffer(SLAB_BYTES);
      this.used = 0;
    }
    const array = new ctor(this.slab!, this.used, length);
    // 8-byte aligned, so that every element type may follow.
    this.used += (byteLength + 7) & ~7;
    return array;
  }
}
