/**
 * What the two ends of a zmq link agree on (package-private): the frames on the wire, the
 * descriptors the planner hands out, and the shared counters of each edge.
 *
 * On the wire (documented for other languages in the package README):
 * - a source connects one DEALER per edge to its sink's ROUTER, with the edge's routing id;
 * - a message is two frames: `[0x01]` and the msgpack body; to a sink opened again from the same
 *   descriptor (a restarted actor: its epoch is 2 or more), `[0x01, u32le epoch]` and the body, and
 *   such a sink takes only the messages stamped with its own epoch (see {@link messageFrame});
 * - the sink acknowledges what left its queue with `[0x02]` and 8 bytes: `u32le taken`, `u32le
 *   dropped` — first `taken` messages read by the actor, then `dropped` dropped by `drop-oldest`,
 *   both from the head of that edge's queue. A source has `capacity` messages of credit per edge,
 *   and each acknowledged message gives one back.
 * - several messages at once: `[0x03]` (with the epoch as for `0x01`), then one frame: a msgpack
 *   array of `bin`, each one message's body, in order (see {@link packBodies}). A source sends them
 *   only to a sink that said it reads them: a sink of this package (or a Python actor) sends
 *   `[0x04]` and 8 zero bytes to each source once, at its first message (zero credit to a source
 *   that reads it as an acknowledgement). A plain peer never says so, and gets `[0x01]` messages
 *   only.
 * @module
 */
import type { LinkDescriptor, LinkPolicy } from '@improv/core';
import type { CurveKeyPair } from './_socket.ts';

/** First frame of a message from a source. */
export const FRAME_MESSAGE = 0x01;
/** First frame of an acknowledgement from a sink. */
export const FRAME_ACK = 0x02;

/** First frame of several messages from a source; the next frame packs their bodies ({@link packBodies}). */
export const FRAME_BATCH = 0x03;
/** First frame of a sink's word that it reads {@link FRAME_BATCH} (8 zero bytes follow). */
export const FRAME_BATCHES_WELCOME = 0x04;
export const BATCHES_WELCOME_FRAMES = [new Uint8Array([FRAME_BATCHES_WELCOME]), new Uint8Array(8)] as const;

/**
 * The first frame of a message a source sends for the sink of epoch `epoch` (its view of
 * {@link SINK_EPOCH}): `[0x01]` for the first sink an edge has (epoch 0, none opened yet, or 1), so
 * plain ZeroMQ peers see the documented format; `[0x01, u32le epoch]` for every later one.
 *
 * Why: a source's DEALER reconnects on its own. When a sink process dies and its restarted
 * incarnation binds the same address, the old connection comes back to the new sink and delivers
 * what was queued for the old one, before the source has seen the new epoch (it crosses processes
 * on the control channel) and sent everything unacknowledged again on a fresh socket. The new sink
 * ignores what is stamped for another epoch, so each message reaches it once: from the fresh socket.
 */
export function messageFrame(epoch: number, type = FRAME_MESSAGE): Uint8Array {
  if (epoch <= 1) return new Uint8Array([type]);
  const frame = new Uint8Array(5);
  frame[0] = type;
  new DataView(frame.buffer).setUint32(1, epoch, true);
  return frame;
}

/** The sink epoch a message's first frame was sent for: 1 for a bare `[0x01]` (the first sink). */
export function messageEpoch(frame: Uint8Array): number {
  if (frame.length < 5) return 1;
  return new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(1, true);
}
export const ACK_FRAME = new Uint8Array([FRAME_ACK]);

/**
 * Bodies larger than this go as messages of their own, not into a {@link FRAME_BATCH}: packing copies
 * a body, and for a large one that copy costs more than the frames it saves (the frame writer sends
 * large bodies without a copy).
 */
export const PACK_MAX_BODY_BYTES = 16 * 1024;

/**
 * Several message bodies as one frame: a msgpack array (fixarray, array 16 or array 32) of `bin`
 * (bin 8, 16 or 32), one per body, in order. A sink splits it with one call (Python's
 * `msgpack.unpackb` gives the list of bodies) instead of reading a frame per message: in Python
 * a frame costs ~0.7 µs to read (a `recv` and a "more frames?" call), an element of the array ~0.04 µs.
 */
export function packBodies(bodies: readonly Uint8Array[]): Uint8Array {
  const count = bodies.length;
  let size = count < 16 ? 1 : count < 0x10000 ? 3 : 5;
  for (const body of bodies) size += body.length + (body.length < 0x100 ? 2 : body.length < 0x10000 ? 3 : 5);
  const packed = new Uint8Array(size);
  const view = new DataView(packed.buffer);
  let at: number;
  if (count < 16) {
    packed[0] = 0x90 | count;
    at = 1;
  } else if (count < 0x10000) {
    packed[0] = 0xdc;
    view.setUint16(1, count);
    at = 3;
  } else {
    packed[0] = 0xdd;
    view.setUint32(1, count);
    at = 5;
  }
  for (const body of bodies) {
    const length = body.length;
    if (length < 0x100) {
      packed[at] = 0xc4;
      packed[at + 1] = length;
      at += 2;
    } else if (length < 0x10000) {
      packed[at] = 0xc5;
      view.setUint16(at + 1, length);
      at += 3;
    } else {
      packed[at] = 0xc6;
      view.setUint32(at + 1, length);
      at += 5;
    }
    if (length <= 32) for (let index = 0; index < length; index++) packed[at + index] = body[index]!;
    else packed.set(body, at);
    at += length;
  }
  return packed;
}

/** The bodies of a {@link packBodies} frame, as views of it; `undefined` when it is not one (or holds none). */
export function unpackBodies(packed: Uint8Array): Uint8Array[] | undefined {
  const end = packed.length;
  if (end === 0) return undefined;
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const first = packed[0]!;
  let count: number;
  let at: number;
  if ((first & 0xf0) === 0x90) {
    count = first & 0x0f;
    at = 1;
  } else if (first === 0xdc && end >= 3) {
    count = view.getUint16(1);
    at = 3;
  } else if (first === 0xdd && end >= 5) {
    count = view.getUint32(1);
    at = 5;
  } else return undefined;
  // Each element takes two bytes at least: a count the frame cannot hold is refused before anything is made.
  if (count === 0 || count > (end - at) / 2) return undefined;
  const bodies = new Array<Uint8Array>(count);
  for (let index = 0; index < count; index++) {
    const type = packed[at];
    let length: number;
    if (type === 0xc4 && at + 2 <= end) {
      length = packed[at + 1]!;
      at += 2;
    } else if (type === 0xc5 && at + 3 <= end) {
      length = view.getUint16(at + 1);
      at += 3;
    } else if (type === 0xc6 && at + 5 <= end) {
      length = view.getUint32(at + 1);
      at += 5;
    } else return undefined;
    if (at + length > end) return undefined;
    bodies[index] = packed.subarray(at, at + length);
    at += length;
  }
  return at === end ? bodies : undefined;
}

/** Which socket implementation a link opens: by runtime (`auto`), or one by name. */
export type SocketChoice = 'auto' | 'zeromq' | 'zmtp';

// Counters of one edge: a SharedArrayBuffer of EDGE_BYTES, float64 counts (each written by one side
// only) at float64 indices 0..5, int32 flags at int32 indices 12..15, then more float64 counts from
// float64 index 8 on.
export const EDGE_BYTES = 88;
/** Messages the source sent into the edge. */
export const SENT = 0;
/** Messages the source dropped itself (sink gone, or a stalled sink's backlog overflowing). */
export const DROPPED_AT_SOURCE = 1;
/** Messages the sink received. */
export const RECEIVED = 2;
/** Messages the sink's actor read. */
export const TAKEN = 3;
/** Messages the sink dropped (`drop-oldest`). */
export const DROPPED_AT_SINK = 4;
/** Messages that waited for a sink when the planner detached it. */
export const DROPPED_AT_DETACH = 5;
/** Bytes of the message bodies (msgpack) the source sent into the edge (float64 index 8, after the flags). */
export const BYTES_SENT = 8;
/**
 * Messages the sink acknowledged as read, summed by the source from the acknowledgements it got
 * (all of the sink's incarnations). The sink's own {@link TAKEN} crosses processes in the control
 * channel's rounds, so a sink process that is SIGKILLed loses its last round; the source, alive,
 * still counts what was acknowledged. What an edge holds uses the larger of the two.
 */
export const ACKED_TAKEN = 9;
/** Messages the sink acknowledged as dropped (`drop-oldest`), summed by the source: see {@link ACKED_TAKEN}. */
export const ACKED_DROPPED = 10;
/** int32 index: 1 while the source waits for room in this edge. */
export const WAITING = 12;
/** int32 index: 1 once the sink is gone (detached, or its link closed); a reopened sink clears it. */
export const SINK_GONE = 13;
/** int32 index: 1 once the source's actor is gone (detached). */
export const SOURCE_GONE = 14;
/**
 * int32 index: bumped by every sink endpoint opened for the edge, so a source learns that its sink
 * was replaced (a restarted actor) even when it never saw the old one gone.
 */
export const SINK_EPOCH = 15;

/**
 * How long after a source's process is gone what it counted as sent may still arrive at its sinks
 * (from the socket's buffers); what has not arrived by then never will.
 */
export const IN_FLIGHT_GRACE_MS = 500;

// The plan's control words: an int32 SharedArrayBuffer.
export const CONTROL_BYTES = 8;
/** 1 once the transport closed. */
export const CONTROL_CLOSED = 0;
/** Bumped (and notified) at every change of a flag, so waiting ends look again. */
export const CONTROL_SEQ = 1;

/** One edge as both of its ends see it. */
export interface EdgeInfo {
  connection: string;
  /** `Actor.link` of the other end. */
  peer: string;
  capacity: number;
  policy: LinkPolicy;
  /** The source DEALER's routing id (ASCII). */
  id: string;
  /** The edge's counters ({@link EDGE_BYTES}). */
  counters: SharedArrayBuffer;
}

interface ZmqDescriptorBase extends LinkDescriptor {
  transport: 'zmq';
  control: SharedArrayBuffer;
  sockets: SocketChoice;
  /** Largest encoded message, in bytes. */
  maxMessageBytes: number;
  /** The pipeline's CURVE key pair: sinks serve with it, sources trust its public key. */
  curve?: CurveKeyPair;
}

/** What a sink endpoint is opened from. */
export interface ZmqInDescriptor extends ZmqDescriptorBase {
  direction: 'in';
  /** The address the sink's ROUTER binds. */
  address: string;
  edges: EdgeInfo[];
}

/** What a source endpoint is opened from. */
export interface ZmqOutDescriptor extends ZmqDescriptorBase {
  direction: 'out';
  edges: (EdgeInfo & { address: string })[];
}

/** Views of one edge's counters. */
export interface EdgeCounters {
  counts: Float64Array<SharedArrayBuffer>;
  flags: Int32Array<SharedArrayBuffer>;
}

/** Views of `buffer`; `counts` covers float64 indices 0..10, of which 6 and 7 are the flags' words (never written as counts). */
export function edgeCounters(buffer: SharedArrayBuffer): EdgeCounters {
  return { counts: new Float64Array(buffer, 0, ACKED_DROPPED + 1), flags: new Int32Array(buffer, 0, SINK_EPOCH + 1) };
}

/** Bumps the plan's change counter and wakes whoever waits on it. */
export function announce(control: Int32Array<SharedArrayBuffer>): void {
  Atomics.add(control, CONTROL_SEQ, 1);
  Atomics.notify(control, CONTROL_SEQ);
}

/**
 * Calls `onChange` at every move of the plan's change counter until `done()` says so (checked after
 * each call; a pending `waitAsync` keeps no worker alive, so an idle watcher costs nothing).
 */
export function watchControl(control: Int32Array<SharedArrayBuffer>, onChange: () => void, done: () => boolean): void {
  void (async () => {
    let seen = Atomics.load(control, CONTROL_SEQ);
    while (!done()) {
      const result = Atomics.waitAsync(control, CONTROL_SEQ, seen);
      if (result.async) await result.value;
      seen = Atomics.load(control, CONTROL_SEQ);
      onChange();
    }
  })();
}

/**
 * Settles once closed sockets are released: libzmq finishes closing a socket (and its event
 * observer) on its own thread, and a worker ended before that aborts Node.
 */
export function socketsReleased(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** A FIFO queue with O(1) push and shift. */
export class Queue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Takes every item out, oldest first. */
  clear(): T[] {
    const items = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return items;
  }
}

/**
 * Where zeromq.js does not serve a link well: on Bun it aborts the process; under Deno it sends but
 * never receives in a worker (Deno 2.9, zeromq.js 6.8).
 */
export function zeromqUnusableHere(): string | undefined {
  if ('Bun' in globalThis) return 'Bun, where zeromq.js aborts the process';
  if ('Deno' in globalThis) return 'Deno, where zeromq.js never receives in a worker';
  return undefined;
}

/**
 * Loads the socket implementation `choice` names. `auto` is the TypeScript ZMTP on every runtime:
 * the bench measured it faster than zeromq.js on Node (see the README), and it is the only one that
 * serves Bun and Deno. `zeromq` is libzmq itself, through zeromq.js, on Node.
 */
export async function loadSockets(choice: SocketChoice): Promise<import('./_socket.ts').SocketFactory> {
  if (choice !== 'zeromq') return (await import('./zmtp/index.ts')).createZmtpSockets();
  const unusable = zeromqUnusableHere();
  if (unusable !== undefined) {
    throw new Error(
      `zmq transport: sockets: zeromq cannot serve links on ${unusable}; use sockets: auto (the TypeScript ZMTP)`,
    );
  }
  return (await import('./_zeromq.ts')).createZeromqSockets();
}
