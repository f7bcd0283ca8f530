/**
 * The control channel between Nexus and an actor that runs in another OS process (package-private):
 * what a `MessagePort` is to a worker, over a stream socket (a Unix socket on one host).
 *
 * - Framing: each message is `u32le length` + its msgpack body (improv's codec, which every store and link
 *   uses, plus the extension below). Messages are delivered in order; `undefined` fields are left out.
 * - Shared memory, mirrored: a `SharedArrayBuffer` in a message (the control words of an actor, the
 *   counters of a link) cannot be shared with another process. It travels as msgpack extension
 *   {@link EXT_SHARED} (an id and its bytes); the other side makes a buffer of its own with that
 *   content, and from then on both copies are kept alike: every {@link MIRROR_EVERY_MS} each side
 *   sends the 32-bit words it changed since the last round, and the other stores them and wakes
 *   whoever `Atomics.wait`s on them, and before every message, so a message never overtakes a change
 *   its sender made before it. So descriptors built for workers work across processes unchanged,
 *   with one rule: a word is written by one side only (each side may write different words of the
 *   same buffer) — what the control words and the link counters already follow. A process whose
 *   event loop is stuck sends no changes: its heartbeat stands still, as a stuck worker's does.
 * - A side that loses the socket sees `onClose`: the parent reports the actor gone, the child ends
 *   (so no actor process outlives a Nexus that died).
 * @module
 */
import { Buffer } from 'node:buffer';
import { type Decoder, type Encoder, ExtData, type ExtensionCodecType } from '@msgpack/msgpack';
import { MsgpackDecoder, MsgpackEncoder, msgpackOptions } from '../codec.ts';

/** msgpack extension type of a mirrored `SharedArrayBuffer`: `u32le id` + its bytes. */
export const EXT_SHARED = 0x51;
/** How often each side sends the words it changed in mirrored buffers. */
export const MIRROR_EVERY_MS = 10;
/** Largest message the channel carries (descriptors and log records are small; this guards against garbage). */
const MAX_FRAME_BYTES = 64 * 2 ** 20;

/** A channel-level message: words changed in mirrored buffers, `[id, word index, value]...` flattened. */
interface MirrorMessage {
  __mirror: number[];
}

interface Mirrored {
  words: Int32Array<SharedArrayBuffer>;
  /** The words as last sent or received. */
  seen: Int32Array;
  /** The same two, as bytes, for the native compare. */
  bytes: Buffer;
  seenBytes: Buffer;
}

/** Bytes compared natively at a time before their words are read one by one. */
const COMPARE_BLOCK_BYTES = 1024;

/**
 * The byte stream a channel runs over: a `node:net` socket (a Unix socket to a child on this host),
 * or anything shaped like one (the agent's connection to another host carries one per actor).
 */
export interface ByteStream {
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  write(chunk: Uint8Array): unknown;
  /** Ends the stream once what was written is out; the other side sees `close`. */
  end(): unknown;
  /** Drops the stream at once. */
  destroy(): unknown;
  setNoDelay?(noDelay: boolean): unknown;
}

/** One end of a control channel over `socket`. */
export class ProcessChannel {
  readonly #socket: ByteStream;
  readonly #encoder: Encoder;
  readonly #decoder: Decoder;
  /** Mirrored buffers by id, and the id of each. */
  readonly #byId = new Map<number, Mirrored>();
  readonly #ids = new Map<SharedArrayBuffer, number>();
  /** Ids this side makes: odd in the parent, even in the child, so the two never collide. */
  #nextId: number;
  #listener: ((message: unknown) => void) | undefined;
  readonly #early: unknown[] = [];
  readonly #closeListeners: (() => void)[] = [];
  /** What has arrived and is not yet a whole frame, as it came. */
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(socket: ByteStream, side: 'parent' | 'child') {
    this.#socket = socket;
    this.#nextId = side === 'parent' ? 1 : 2;
    // improv's codec (typed arrays keep their kind: what `this.publish` sends up), plus the mirror.
    const improv = msgpackOptions.extensionCodec;
    const codec: ExtensionCodecType<undefined> = {
      tryToEncode: (value, context) =>
        value instanceof SharedArrayBuffer
          ? new ExtData(EXT_SHARED, this.#encodeShared(value))
          : improv.tryToEncode(value, context),
      decode: (data, type, context) =>
        type === EXT_SHARED ? this.#decodeShared(data) : improv.decode(data, type, context),
    };
    this.#encoder = new MsgpackEncoder({ extensionCodec: codec, ignoreUndefined: true });
    this.#decoder = new MsgpackDecoder({ extensionCodec: codec });
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Uint8Array) => this.#receive(chunk));
    socket.on('error', () => {}); // 'close' follows; what went wrong matters less than that it is gone
    socket.on('close', () => this.#ended());
    this.#timer = setInterval(() => this.#sendChanges(), MIRROR_EVERY_MS);
    // The mirror round must not keep a process alive on its own.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /**
   * Sends a message (plain data, typed arrays and `SharedArrayBuffer`s). Ignored once closed. The
   * words this side changed in mirrored buffers go first, so the other side sees every change made
   * before a message by the time it gets the message (a state or a result, then the counters behind it).
   */
  send(message: unknown): void {
    if (this.#closed) return;
    this.#sendChanges();
    this.#write(message);
  }

  #write(message: unknown): void {
    const body = this.#encoder.encode(message);
    const frame = new Uint8Array(4 + body.byteLength);
    new DataView(frame.buffer).setUint32(0, body.byteLength, true);
    frame.set(body, 4);
    this.#socket.write(frame);
  }

  /** Sets the one listener; messages that came before it are delivered first, in order. */
  onMessage(listener: (message: unknown) => void): void {
    this.#listener = listener;
    for (const message of this.#early.splice(0)) listener(message);
  }

  /** Called once when the socket is gone (closed by either side, or broken). */
  onClose(listener: () => void): void {
    if (this.#closed) listener();
    else this.#closeListeners.push(listener);
  }

  /** Sends the last changes, then closes; resolves once everything written has been flushed. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#sendChanges();
    return new Promise((resolve) => {
      this.onClose(resolve);
      this.#socket.end();
    });
  }

  #encodeShared(buffer: SharedArrayBuffer): Uint8Array {
    let id = this.#ids.get(buffer);
    if (id === undefined) {
      id = this.#nextId;
      this.#nextId += 2;
      this.#track(id, buffer);
    }
    const data = new Uint8Array(4 + buffer.byteLength);
    new DataView(data.buffer).setUint32(0, id, true);
    data.set(new Uint8Array(buffer), 4);
    return data;
  }

  #decodeShared(data: Uint8Array): SharedArrayBuffer {
    const id = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
    const known = this.#byId.get(id);
    if (known) return known.words.buffer;
    const buffer = new SharedArrayBuffer(data.byteLength - 4);
    new Uint8Array(buffer).set(data.subarray(4));
    this.#track(id, buffer);
    return buffer;
  }

  #track(id: number, buffer: SharedArrayBuffer): void {
    const words = new Int32Array(buffer, 0, buffer.byteLength >> 2);
    const seen = words.slice();
    this.#byId.set(id, {
      words,
      seen,
      bytes: Buffer.from(buffer, 0, words.length * 4),
      seenBytes: Buffer.from(seen.buffer, 0, seen.length * 4),
    });
    this.#ids.set(buffer, id);
  }

  #sendChanges(): void {
    if (this.#closed || this.#byId.size === 0) return;
    const changes: number[] = [];
    for (const [id, { words, seen, bytes, seenBytes }] of this.#byId) {
      // Native compares (memcmp) find the blocks that changed; only their words are read one by one.
      // A large buffer that barely changes (a bench's samples, a link's counters) costs microseconds.
      for (let from = 0; from < bytes.byteLength; from += COMPARE_BLOCK_BYTES) {
        const to = Math.min(from + COMPARE_BLOCK_BYTES, bytes.byteLength);
        if (Buffer.compare(bytes.subarray(from, to), seenBytes.subarray(from, to)) === 0) continue;
        for (let index = from >> 2; index < to >> 2; index++) {
          const value = Atomics.load(words, index);
          if (value === seen[index]) continue;
          seen[index] = value;
          changes.push(id, index, value);
        }
      }
    }
    if (changes.length > 0) this.#write({ __mirror: changes } satisfies MirrorMessage);
  }

  /**
   * Applies one round of the other side's changes: every word first, then the wake-ups. A waiter
   * woken by one word (a link's `CONTROL_SEQ`) runs on its own thread at once, and must find every
   * word changed before it in that round (a restarted sink's `SINK_EPOCH`, written just before its
   * announcement): woken before that word was stored, a source saw nothing new, went back to sleep,
   * and never sent the new sink what it had to send it again.
   */
  #applyChanges(changes: number[]): void {
    for (let at = 0; at + 2 < changes.length; at += 3) {
      const mirrored = this.#byId.get(changes[at]!);
      if (!mirrored) continue;
      const index = changes[at + 1]!;
      const value = changes[at + 2]!;
      mirrored.seen[index] = value;
      Atomics.store(mirrored.words, index, value);
    }
    for (let at = 0; at + 2 < changes.length; at += 3) {
      const mirrored = this.#byId.get(changes[at]!);
      if (mirrored) Atomics.notify(mirrored.words, changes[at + 1]!);
    }
  }

  #receive(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.byteLength;
    while (this.#buffered >= 4) {
      const header = this.#peek(4);
      const length = new DataView(header.buffer, header.byteOffset, 4).getUint32(0, true);
      if (length > MAX_FRAME_BYTES) {
        // Not our peer (or a broken one): nothing after this can be trusted.
        this.#socket.destroy();
        return;
      }
      if (this.#buffered < 4 + length) return;
      const frame = this.#take(4 + length);
      const message = this.#decoder.decode(frame.subarray(4));
      if ((message as Partial<MirrorMessage> | null)?.__mirror !== undefined) {
        this.#applyChanges((message as MirrorMessage).__mirror);
      } else if (this.#listener) {
        this.#listener(message);
      } else {
        this.#early.push(message);
      }
    }
  }

  /** The first `count` buffered bytes, without taking them (copied only when they span chunks). */
  #peek(count: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.byteLength >= count) return first;
    const out = new Uint8Array(count);
    let filled = 0;
    for (const chunk of this.#chunks) {
      const part = chunk.subarray(0, count - filled);
      out.set(part, filled);
      filled += part.byteLength;
      if (filled === count) break;
    }
    return out;
  }

  /** Takes the first `count` buffered bytes out (one copy when they span chunks, none otherwise). */
  #take(count: number): Uint8Array {
    this.#buffered -= count;
    const first = this.#chunks[0]!;
    if (first.byteLength >= count) {
      if (first.byteLength === count) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(count);
      return first.subarray(0, count);
    }
    const out = new Uint8Array(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.#chunks[0]!;
      const part = chunk.subarray(0, count - filled);
      out.set(part, filled);
      filled += part.byteLength;
      if (part.byteLength === chunk.byteLength) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(part.byteLength);
    }
    return out;
  }

  #ended(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    for (const listener of this.#closeListeners.splice(0)) listener();
  }
}
