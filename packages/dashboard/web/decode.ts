/**
 * The page's msgpack decoding of the server's binary frames: improv's codec, except that a typed
 * array is not copied out of the message when it can be a view of it, and otherwise is copied into
 * a buffer the page used before. A WebSocket message is an ArrayBuffer of its own that nothing else
 * holds, so a view of it is safe; the codec the pipeline uses copies every array (its buffers are
 * reused), which cost the page a fresh half-megabyte buffer per 512×512 uint16 frame — allocated,
 * zeroed, copied into, and collected again — at 30 to 60 frames a second.
 * @module
 */
import { MsgpackDecoder, msgpackOptions, typedArrayConstructors } from '@improv/core/codec';
import type { Decoder, ExtensionCodecType } from '@msgpack/msgpack';

/** Arrays smaller than this are copied as the codec does (a buffer from the pool is not worth it). */
const POOL_FROM_BYTES = 64 * 1024;
/** Buffers kept per size. */
const POOL_DEPTH = 3;

/**
 * Buffers of arrays the page no longer shows, by size, for the next misaligned array of that size.
 * Only arrays the pool made are taken back, and only by their owner (the plot store, when a newer
 * frame replaced the one it held).
 */
export class BufferPool {
  readonly #free = new Map<number, ArrayBuffer[]>();
  readonly #made = new WeakSet<ArrayBuffer>();

  /** A buffer of exactly `bytes`, from the pool or new (its contents are whatever it held). */
  take(bytes: number): ArrayBuffer {
    const buffer = this.#free.get(bytes)?.pop() ?? new ArrayBuffer(bytes);
    this.#made.add(buffer);
    return buffer;
  }

  /** Takes back the buffer under `array` when the pool made it and nothing else will read the array. */
  release(array: unknown): void {
    if (!ArrayBuffer.isView(array)) return;
    const buffer = array.buffer;
    if (!(buffer instanceof ArrayBuffer) || !this.#made.has(buffer)) return;
    this.#made.delete(buffer);
    let free = this.#free.get(buffer.byteLength);
    if (free === undefined) {
      free = [];
      this.#free.set(buffer.byteLength, free);
    }
    if (free.length < POOL_DEPTH) free.push(buffer);
  }
}

/** The number of bigint kinds at the end of `typedArrayConstructors` (they keep the codec's path). */
const BIGINT_KINDS = 2;

/** A msgpack decoder for the server's frames: typed arrays as views where aligned, else through `pool`. */
export function pageDecoder(pool: BufferPool): Decoder<undefined> {
  const base = msgpackOptions.extensionCodec;
  const numeric = typedArrayConstructors.length - BIGINT_KINDS;
  const extensionCodec: ExtensionCodecType<undefined> = {
    tryToEncode: (object, context) => base.tryToEncode(object, context),
    decode(data, type, context) {
      const ctor = type >= 0 && type < numeric ? typedArrayConstructors[type] : undefined;
      if (ctor !== undefined && data.byteLength % ctor.BYTES_PER_ELEMENT === 0) {
        const length = data.byteLength / ctor.BYTES_PER_ELEMENT;
        if (data.byteOffset % ctor.BYTES_PER_ELEMENT === 0 && data.buffer instanceof ArrayBuffer) {
          return new ctor(data.buffer, data.byteOffset, length);
        }
        if (data.byteLength >= POOL_FROM_BYTES) {
          const buffer = pool.take(data.byteLength);
          new Uint8Array(buffer).set(data);
          return new ctor(buffer, 0, length);
        }
      }
      return base.decode(data, type, context);
    },
  };
  // improv's integer rule too: the server's MsgpackEncoder writes a timestamp beyond 32 bits as a 64-bit integer.
  return new MsgpackDecoder({ ...msgpackOptions, extensionCodec });
}
