/**
 * Writes ZMTP frames to a stream socket in batches. Frames are encoded straight into an arena (a
 * large buffer filled front to back; bytes handed to the socket are never written again, so the
 * socket may hold them). A frame after a pause goes out at the end of the microtask it was queued in,
 * with whatever that microtask queued. A frame queued within {@link BUSY_GAP_MS} of the one before is
 * part of a flood: the flood's frames gather into one write until {@link QUIET_TURNS} microtask turns
 * pass without a new frame (the sender awaits something not settled yet: a timer, an
 * acknowledgement, its next input), or the batch is {@link BUSY_FLUSH_BYTES} or
 * {@link BUSY_WAIT_MS} old — one write per many small messages instead of one each (0.4 → 0.6 M
 * msgs/s for 8 B). A sender that blocks its thread right after a flood (`Atomics.wait`, a busy loop:
 * no microtask runs) holds the flood's last frames back until it sends again, and no longer. Large
 * frame bodies are not copied: they are written as they are, between the arena's pieces (so a
 * caller must not change a large frame after sending it). While the socket's own buffer is full,
 * frames keep gathering and go out at its `drain`.
 * @module
 */
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { FLAG_LONG, SHORT_FRAME_MAX } from './frames.ts';

/** Size of a connection's first arena (most connections send little: acknowledgements, commands). */
const FIRST_ARENA_BYTES = 16 * 1024;
/**
 * Size of each later arena: larger than a batch ({@link FLUSH_BYTES}), so that the bytes of a batch
 * cut short by the end of an arena move to the next one and the batch goes out as one piece. Several
 * pieces go out corked, which Node writes with one writev but Bun first concatenates (a copy of
 * every byte).
 */
const ARENA_BYTES = 512 * 1024;
/** Frame bodies this large are written by reference, not copied into the arena. */
const ZERO_COPY_BYTES = 32 * 1024;
/** A batch this large is written at once. */
const FLUSH_BYTES = 256 * 1024;
/**
 * While frames keep coming, a batch goes out at this size: large enough that a flood of small
 * messages costs one write per many, small enough that the receiver works on one batch while the
 * next gathers.
 */
const BUSY_FLUSH_BYTES = 16 * 1024;
/**
 * Microtask turns without a new frame after which a flood's batch goes out. A sender whose messages
 * go out one after another, each `put` awaited (a settled promise), takes a turn or two between
 * frames (one per `await` between its loop and the `put`); a sender that waits for something else
 * gives the turns up at once.
 */
const QUIET_TURNS = 4;
/** A frame this soon after the one before is part of a flood. */
const BUSY_GAP_MS = 0.05;
/** A flood's batch this old goes out at the next microtask turn. */
const BUSY_WAIT_MS = 0.25;
/** Bodies up to this size are copied byte by byte (faster than `set` for a few bytes). */
const SMALL_COPY_BYTES = 24;

/** The batching frame writer of one connection. */
export class FrameWriter {
  readonly #socket: Socket;
  #arena: Buffer = Buffer.allocUnsafe(FIRST_ARENA_BYTES);
  /** Bytes of the arena filled. */
  #used = 0;
  /** Start of the arena's bytes not handed to the socket yet. */
  #start = 0;
  /** Pieces queued before `#arena[#start..#used)`, in order. */
  #pieces: Uint8Array[] = [];
  #queuedBytes = 0;
  /** A flush is scheduled: {@link #turn} is queued as a microtask. */
  #scheduled = false;
  /** Frames queued so far, and their number when {@link #turn} last looked. */
  #frames = 0;
  #seenFrames = 0;
  /** Turns in a row without a new frame. */
  #quietTurns = 0;
  /** The batch being gathered goes out at its first turn (the sender had paused). */
  #eager = true;
  /** When the last frame was queued, and when the batch being gathered began. */
  #lastFrameAt = -Infinity;
  #batchFrom = 0;
  /** The socket's buffer is full: wait for `drain`. */
  #blocked = false;
  #closed = false;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('drain', () => {
      if (!this.#blocked) return;
      this.#blocked = false;
      this.flush();
    });
  }

  /** Queues raw bytes (the greeting). */
  raw(bytes: Uint8Array): void {
    if (this.#closed) return;
    const at = this.#reserve(bytes.length);
    this.#arena.set(bytes, at);
    this.#queued(bytes.length);
  }

  /**
   * Queues one frame with `flags` (MORE, COMMAND; LONG is set here when needed) whose body is
   * `head` (optional, small) followed by `body`.
   */
  frame(flags: number, body: Uint8Array, head?: Uint8Array): void {
    if (this.#closed) return;
    const headLength = head === undefined ? 0 : head.length;
    const size = headLength + body.length;
    const headerLength = size > SHORT_FRAME_MAX ? 9 : 2;
    if (body.length >= ZERO_COPY_BYTES) {
      let at = this.#reserve(headerLength + headLength);
      at = this.#header(at, flags, size);
      if (head !== undefined) this.#arena.set(head, at);
      this.#cut();
      this.#pieces.push(body);
      this.#queued(headerLength + size);
      return;
    }
    let at = this.#reserve(headerLength + size);
    at = this.#header(at, flags, size);
    const arena = this.#arena;
    if (head !== undefined) {
      arena.set(head, at);
      at += headLength;
    }
    const length = body.length;
    if (length <= SMALL_COPY_BYTES) {
      for (let index = 0; index < length; index++) arena[at + index] = body[index]!;
    } else arena.set(body, at);
    this.#queued(headerLength + size);
  }

  /** Hands everything queued to the socket now (unless its buffer is full: then at `drain`). */
  flush(): void {
    if (this.#closed || this.#blocked) return;
    this.#cut();
    const pieces = this.#pieces;
    if (pieces.length === 0) return;
    this.#pieces = [];
    this.#queuedBytes = 0;
    const socket = this.#socket;
    if (socket.destroyed) return;
    let flowing: boolean;
    if (pieces.length === 1) flowing = socket.write(pieces[0]!);
    else {
      socket.cork();
      flowing = true;
      for (const piece of pieces) flowing = socket.write(piece);
      socket.uncork();
    }
    if (!flowing) this.#blocked = true;
  }

  /** Drops everything queued; nothing more is written. */
  close(): void {
    this.#closed = true;
    this.#pieces = [];
    this.#queuedBytes = 0;
  }

  #queued(bytes: number): void {
    const now = performance.now();
    const flood = now - this.#lastFrameAt < BUSY_GAP_MS;
    this.#lastFrameAt = now;
    const opening = this.#queuedBytes === 0;
    this.#queuedBytes += bytes;
    this.#frames += 1;
    if (this.#blocked) return; // all of it goes at `drain`
    if (opening) {
      this.#eager = !flood;
      this.#batchFrom = now;
    } else if (!flood || now - this.#batchFrom >= BUSY_WAIT_MS) {
      // The sender paused without a microtask turn (it blocked its thread), or the batch is old
      // enough: what gathered goes at the next turn, with this frame.
      this.#eager = true;
    }
    if (this.#queuedBytes >= FLUSH_BYTES) this.flush();
    else if (!this.#scheduled) {
      // In microtasks, not at the next macrotask: an actor whose steps await only settled promises
      // may not give the event loop a turn for a long time.
      this.#scheduled = true;
      this.#seenFrames = this.#frames;
      this.#quietTurns = 0;
      queueMicrotask(this.#turn);
    }
  }

  /** A microtask turn while a batch gathers: it goes out once the sender pauses, or once it is large. */
  readonly #turn = (): void => {
    if (this.#frames !== this.#seenFrames) {
      this.#seenFrames = this.#frames;
      this.#quietTurns = 0;
    } else this.#quietTurns += 1;
    if (
      this.#eager ||
      this.#quietTurns >= QUIET_TURNS ||
      this.#queuedBytes >= BUSY_FLUSH_BYTES ||
      this.#queuedBytes === 0 ||
      this.#closed
    ) {
      this.#scheduled = false;
      this.flush();
    } else queueMicrotask(this.#turn);
  };

  /**
   * Room for `length` bytes in the arena: their offset. When the arena is full, a fresh one; the bytes
   * queued at the end of the old one move along when they are no more than a batch (a socket that
   * is blocked gathers more: those stay where they are, a piece of their own).
   */
  #reserve(length: number): number {
    if (this.#used + length > this.#arena.length) {
      const pending = this.#used - this.#start;
      const moving = pending <= FLUSH_BYTES ? pending : 0;
      if (moving === 0) this.#cut();
      const arena = Buffer.allocUnsafe(Math.max(ARENA_BYTES, moving + length));
      if (moving > 0) arena.set(this.#arena.subarray(this.#start, this.#used), 0);
      this.#arena = arena;
      this.#start = 0;
      this.#used = moving;
    }
    const at = this.#used;
    this.#used += length;
    return at;
  }

  /** Writes a frame header at `at`; returns where the body starts. */
  #header(at: number, flags: number, size: number): number {
    const arena = this.#arena;
    if (size <= SHORT_FRAME_MAX) {
      arena[at] = flags;
      arena[at + 1] = size;
      return at + 2;
    }
    arena[at] = flags | FLAG_LONG;
    arena.writeUInt32BE(Math.floor(size / 0x1_0000_0000), at + 1);
    arena.writeUInt32BE(size >>> 0, at + 5);
    return at + 9;
  }

  /** Moves the arena's filled, unqueued bytes to the pieces. */
  #cut(): void {
    if (this.#used > this.#start) {
      this.#pieces.push(this.#arena.subarray(this.#start, this.#used));
      this.#start = this.#used;
    }
  }
}
