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
 * - several messages at once: `[0x03]` (with the epoch as for `0x01`), then one body per frame, in
 *   order. A source sends them only to a sink that said it reads them: a sink of this package (or a
 *   Python actor) sends `[0x04]` and 8 zero bytes to each source once, at its first message (zero
 *   credit to a source that reads it as an acknowledgement). A plain peer never says so, and gets
 *   `[0x01]` messages only.
 * @module
 */
import type { LinkDescriptor, LinkPolicy } from '@improv/core';
import type { CurveKeyPair } from './_socket.ts';

/** First frame of a message from a source. */
export const FRAME_MESSAGE = 0x01;
/** First frame of an acknowledgement from a sink. */
export const FRAME_ACK = 0x02;

/** First frame of several messages from a source, one body per frame after it. */
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
