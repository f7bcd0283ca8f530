/**
 * Reads a ZMTP byte stream — the 64-byte greeting, then frames — as chunks arrive from a socket.
 * A greeting or frame that lies wholly in one chunk is handed on as a view of that chunk (no copy);
 * one split across chunks is gathered into a buffer that doubles as bytes arrive (up to the frame's
 * size, so a peer cannot make it reserve memory it never sends), so every byte is copied a bounded
 * number of times however the stream is cut (never quadratic). Bytes handed on are never written
 * again by the decoder, so handlers may keep them.
 * @module
 */
import { FLAG_LONG } from './frames.ts';
import { checkSignature, GREETING_BYTES } from './greeting.ts';

/** What the decoder hands on, in stream order. */
export interface DecoderHandlers {
  /** The peer's 64-byte greeting (its first bytes already checked). */
  greeting(bytes: Uint8Array): void;
  /** One frame: its flags byte and its body. */
  frame(flags: number, body: Uint8Array): void;
  /** The stream is not ZMTP, or a frame is larger than allowed; the decoder has stopped. */
  error(reason: string): void;
}

/** Length of a unit whose header is not complete yet. */
const UNKNOWN = -1;
/** Length returned after an error was reported. */
const FAILED = -2;
/** Room for the longest frame header (flags and an 8-byte size). */
const HEADER_ROOM = 16;

/** The streaming decoder of one connection. */
export class FrameDecoder {
  readonly #handlers: DecoderHandlers;
  #maxFrameBytes: number;
  #greeted = false;
  #stopped = false;
  /** An incomplete greeting or frame, its first `#partialLength` bytes filled. */
  #partial: Uint8Array | undefined;
  #partialLength = 0;

  /** @param maxFrameBytes the largest frame body taken; a larger one is a protocol error. */
  constructor(handlers: DecoderHandlers, maxFrameBytes: number) {
    this.#handlers = handlers;
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Changes the largest frame body taken (small during a handshake, larger after it). */
  set maxFrameBytes(bytes: number) {
    this.#maxFrameBytes = bytes;
  }

  /** Stops decoding: nothing more is handed on (the connection closed or failed). */
  stop(): void {
    this.#stopped = true;
    this.#partial = undefined;
    this.#partialLength = 0;
  }

  /** Takes the next chunk of the stream. */
  push(chunk: Uint8Array): void {
    if (this.#stopped || chunk.length === 0) return;
    let offset = 0;
    if (this.#partialLength > 0) {
      offset = this.#complete(chunk);
      if (this.#stopped || this.#partialLength > 0) return;
    }
    offset = this.#scan(chunk, offset);
    if (!this.#stopped && offset < chunk.length) this.#stash(chunk, offset);
  }

  /** Hands on every whole unit in `bytes` from `offset`; returns where the first incomplete one starts. */
  #scan(bytes: Uint8Array, offset: number): number {
    const end = bytes.length;
    const handlers = this.#handlers;
    while (!this.#stopped) {
      if (this.#greeted && offset + 2 <= end && (bytes[offset]! & FLAG_LONG) === 0) {
        // The common case, inline: a short frame.
        const stop = offset + 2 + bytes[offset + 1]!;
        if (stop > end) return offset;
        handlers.frame(bytes[offset]!, bytes.subarray(offset + 2, stop));
        offset = stop;
        continue;
      }
      const length = this.#unitLength(bytes, offset, end);
      if (length === FAILED) return end;
      if (length === UNKNOWN || offset + length > end) return offset;
      this.#dispatch(bytes, offset, length);
      offset += length;
    }
    return end;
  }

  /** The whole length of the unit at `bytes[start..end)`, UNKNOWN until its header is in, or FAILED. */
  #unitLength(bytes: Uint8Array, start: number, end: number): number {
    if (!this.#greeted) {
      const wrong = checkSignature(bytes.subarray(start, Math.min(end, start + 11)));
      if (wrong !== undefined) return this.#fail(wrong);
      return GREETING_BYTES;
    }
    if (end - start < 2) return UNKNOWN;
    const flags = bytes[start]!;
    if ((flags & FLAG_LONG) === 0) return 2 + bytes[start + 1]!;
    if (end - start < 9) return UNKNOWN;
    const high =
      ((bytes[start + 1]! << 24) | (bytes[start + 2]! << 16) | (bytes[start + 3]! << 8) | bytes[start + 4]!) >>> 0;
    const low =
      ((bytes[start + 5]! << 24) | (bytes[start + 6]! << 16) | (bytes[start + 7]! << 8) | bytes[start + 8]!) >>> 0;
    const size = high * 0x1_0000_0000 + low;
    if (high >= 0x20_0000 || size > this.#maxFrameBytes) {
      return this.#fail(`the peer sent a frame of ${size} bytes, more than the ${this.#maxFrameBytes} this side takes`);
    }
    return 9 + size;
  }

  #dispatch(bytes: Uint8Array, offset: number, length: number): void {
    if (!this.#greeted) {
      this.#greeted = true;
      this.#handlers.greeting(bytes.subarray(offset, offset + length));
      return;
    }
    const flags = bytes[offset]!;
    const header = (flags & FLAG_LONG) === 0 ? 2 : 9;
    this.#handlers.frame(flags, bytes.subarray(offset + header, offset + length));
  }

  /** Keeps the incomplete unit at the end of `chunk`, in a buffer of its full size when that is known. */
  #stash(chunk: Uint8Array, offset: number): void {
    const rest = chunk.length - offset;
    const length = this.#unitLength(chunk, offset, chunk.length);
    if (length === FAILED) return;
    const partial = new Uint8Array(
      length === UNKNOWN ? HEADER_ROOM : Math.min(length, Math.max(rest * 2, HEADER_ROOM)),
    );
    partial.set(chunk.subarray(offset));
    this.#partial = partial;
    this.#partialLength = rest;
  }

  /** Fills the incomplete unit from `chunk`, hands it on when whole; returns the bytes of `chunk` used. */
  #complete(chunk: Uint8Array): number {
    let partial = this.#partial!;
    let used = 0;
    let length = this.#unitLength(partial, 0, this.#partialLength);
    while (length === UNKNOWN) {
      if (used === chunk.length) return used;
      // Take only header bytes: a short frame's header is 2 bytes, a long one's 9.
      const header = this.#partialLength < 2 ? 2 : 9;
      const take = Math.min(header - this.#partialLength, chunk.length - used);
      partial.set(chunk.subarray(used, used + take), this.#partialLength);
      this.#partialLength += take;
      used += take;
      length = this.#unitLength(partial, 0, this.#partialLength);
    }
    if (length === FAILED) return chunk.length;
    const take = Math.min(length - this.#partialLength, chunk.length - used);
    if (partial.length < this.#partialLength + take) {
      // Double (at least), but never past the unit's length: copies stay linear in the unit's size.
      const grown = new Uint8Array(Math.min(length, Math.max(partial.length * 2, this.#partialLength + take)));
      grown.set(partial.subarray(0, this.#partialLength));
      partial = grown;
      this.#partial = grown;
    }
    partial.set(chunk.subarray(used, used + take), this.#partialLength);
    this.#partialLength += take;
    used += take;
    if (this.#partialLength < length) return used;
    this.#partial = undefined;
    this.#partialLength = 0;
    this.#dispatch(partial, 0, length);
    return used;
  }

  #fail(reason: string): number {
    if (!this.#stopped) {
      this.stop();
      this.#handlers.error(reason);
    }
    return FAILED;
  }
}
