// The ZMTP frame writer: what it hands to the socket is every frame, whole and in order, whatever
// the frame sizes (copied into arenas, or written by reference), however batches fall across arenas,
// and while the socket's buffer is full.
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { FrameDecoder } from '../src/zmtp/decoder.ts';
import { encodeGreeting } from '../src/zmtp/greeting.ts';
import { FrameWriter } from '../src/zmtp/writer.ts';

/** A socket that keeps what is written; `full` makes write() say the buffer is full until drained. */
class FakeSocket extends EventEmitter {
  readonly chunks: Uint8Array[] = [];
  /** How many write() calls went out while corked (one writev on Node, a concatenation on Bun). */
  corkedWrites = 0;
  destroyed = false;
  full = false;
  #corked = false;

  write(chunk: Uint8Array): boolean {
    // A copy: the writer promises never to write these bytes again, and this checks that it doesn't.
    this.chunks.push(Uint8Array.prototype.slice.call(chunk));
    if (this.#corked) this.corkedWrites += 1;
    return !this.full;
  }

  cork(): void {
    this.#corked = true;
  }

  uncork(): void {
    this.#corked = false;
  }

  drain(): void {
    this.full = false;
    this.emit('drain');
  }
}

/** Frames of `size` bytes, each filled with its own index. */
function frames(sizes: readonly number[]): Uint8Array[] {
  return sizes.map((size, index) => new Uint8Array(size).fill(index & 255));
}

/** Every frame body the socket got, decoded. */
function written(socket: FakeSocket): Uint8Array[] {
  const bodies: Uint8Array[] = [];
  const decoder = new FrameDecoder(
    {
      greeting: () => {},
      frame: (_flags, body) => bodies.push(Uint8Array.prototype.slice.call(body)),
      error: (reason) => {
        throw new Error(reason);
      },
    },
    64 * 1024 * 1024,
  );
  decoder.push(encodeGreeting('NULL', false));
  for (const chunk of socket.chunks) decoder.push(chunk);
  return bodies;
}

/** Where `got` first differs from `expected` (`undefined`: the same frames); bytes compared natively. */
function firstDifference(got: Uint8Array[], expected: Uint8Array[]): string | undefined {
  if (got.length !== expected.length) return `${got.length} frames, not ${expected.length}`;
  const index = got.findIndex((body, at) => !Buffer.from(body).equals(expected[at]!));
  return index < 0 ? undefined : `frame ${index}: ${got[index]!.length} bytes, expected ${expected[index]!.length}`;
}

/** Until the microtasks are done: a batch goes out once its sender pauses, within them. */
const flushed = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe('FrameWriter', () => {
  it('writes frames of every size whole and in order, batches crossing arenas included, each batch in one piece', async () => {
    const socket = new FakeSocket();
    const writer = new FrameWriter(socket as unknown as Socket);
    // Small, short-frame, 4 KiB and 24 KiB bodies (copied), in batches of about a megabyte each.
    const sizes = Array.from({ length: 600 }, (_, index) => [3, 200, 4096, 24 * 1024][index % 4]!);
    const bodies = frames(sizes);
    for (let index = 0; index < bodies.length; index++) {
      writer.frame(0, bodies[index]!);
      if (index % 50 === 49) await flushed();
    }
    await flushed();
    expect(firstDifference(written(socket), bodies)).toBeUndefined();
    // Everything copied into arenas: every batch went out as one write, never several corked.
    expect(socket.corkedWrites).toBe(0);
  });

  it('writes large bodies by reference between the copied ones, and a head before a body', async () => {
    const socket = new FakeSocket();
    const writer = new FrameWriter(socket as unknown as Socket);
    const bodies = frames([10, 40 * 1024, 10, 1024 * 1024, 5]);
    for (const body of bodies) writer.frame(0, body);
    writer.frame(0, new Uint8Array([9, 9]), new Uint8Array([7]));
    await flushed();
    expect(firstDifference(written(socket), [...bodies, new Uint8Array([7, 9, 9])])).toBeUndefined();
  });

  it('keeps gathering while the socket is full, and writes it all at drain', async () => {
    const socket = new FakeSocket();
    const writer = new FrameWriter(socket as unknown as Socket);
    const bodies = frames(Array.from({ length: 400 }, (_, index) => (index % 3 === 0 ? 4096 : 100)));
    socket.full = true;
    writer.frame(0, bodies[0]!);
    await flushed();
    const before = socket.chunks.length;
    // The socket said full: what follows waits for its drain, across several arenas.
    for (const body of bodies.slice(1)) writer.frame(0, body);
    await flushed();
    expect(socket.chunks.length).toBe(before);
    socket.drain();
    expect(firstDifference(written(socket), bodies)).toBeUndefined();
  });

  it('sends a frame after a pause at once, and gathers a flood that follows into few writes until it pauses', async () => {
    const socket = new FakeSocket();
    const writer = new FrameWriter(socket as unknown as Socket);
    const bodies = frames(Array.from({ length: 201 }, () => 8));
    // After a pause, a frame goes out in the next microtask turn, before its sender goes on.
    writer.frame(0, bodies[0]!);
    await Promise.resolve();
    expect(socket.chunks.length).toBe(1);
    // Right after that write, a flood: a sender that awaits a settled promise per message (as an
    // actor awaits `put`), one await deep and two deep. Its frames gather while it keeps on.
    const send = async (body: Uint8Array) => {
      writer.frame(0, body);
      await Promise.resolve();
    };
    for (const body of bodies.slice(1, 101)) await send(body);
    for (const body of bodies.slice(101)) await (async () => await send(body))();
    await flushed();
    expect(firstDifference(written(socket), bodies)).toBeUndefined();
    // A write per 0.25 ms of the flood, not one per frame (a cold start here takes a few ms).
    expect(socket.chunks.length).toBeLessThanOrEqual(50);
    // After a pause again: at once.
    await new Promise((resolve) => setTimeout(resolve, 2));
    const before = socket.chunks.length;
    writer.frame(0, new Uint8Array([1, 2, 3]));
    await Promise.resolve();
    expect(socket.chunks.length).toBe(before + 1);
  });

  it("sends a flood's batch once it is 16 KiB (or 0.25 ms old)", async () => {
    const socket = new FakeSocket();
    const writer = new FrameWriter(socket as unknown as Socket);
    const bodies = frames(Array.from({ length: 65 }, () => 1024));
    for (const body of bodies) {
      writer.frame(0, body);
      await Promise.resolve();
    }
    await flushed();
    expect(firstDifference(written(socket), bodies)).toBeUndefined();
    // The first frame at once, then 64 KiB in pieces of at most 16 KiB (fewer bytes when a piece
    // waited 0.25 ms first, on a slow or busy machine): not in one, nor frame by frame.
    expect(socket.chunks.length).toBeGreaterThanOrEqual(5);
    expect(socket.chunks.length).toBeLessThanOrEqual(40);
    for (const chunk of socket.chunks) expect(chunk.length).toBeLessThanOrEqual(17 * 1024);
  });

  it('gets each message of a paced sender that blocks its thread between them out before it blocks', async () => {
    const socket = new FakeSocket();
    const writer = new FrameWriter(socket as unknown as Socket);
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    const out: number[] = [];
    for (let index = 0; index < 5; index++) {
      writer.frame(0, new Uint8Array([index]));
      await Promise.resolve();
      out.push(socket.chunks.length);
      // As the bench's paced source does: no turn of the event loop, no more microtasks until it wakes.
      Atomics.wait(sleeper, 0, 0, 1);
    }
    expect(out).toEqual([1, 2, 3, 4, 5]);
  });

  it('after a flood, holds a sender that blocks its thread between messages back by one message at most', async () => {
    const socket = new FakeSocket();
    const writer = new FrameWriter(socket as unknown as Socket);
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    for (let index = 0; index < 50; index++) {
      writer.frame(0, new Uint8Array([index]));
      await Promise.resolve();
    }
    // Paced right after the flood, blocking the thread after one microtask turn per message.
    const pending: number[] = [];
    for (let index = 0; index < 6; index++) {
      writer.frame(0, new Uint8Array([100 + index]));
      await Promise.resolve();
      pending.push(50 + index + 1 - written(socket).length);
      Atomics.wait(sleeper, 0, 0, 1);
    }
    // The first paced message may wait for the second; from then on each is out before the block.
    expect(pending.slice(1)).toEqual([0, 0, 0, 0, 0]);
  });
});
