/**
 * Shared-memory layout of the local transport: the ring header words, the doorbell words, the
 * descriptor shapes and the record framing. Package-private.
 * @module
 */
import type { LinkDescriptor, LinkPolicy } from '@improv/core';

// Ring header (Int32 slots), three 64-byte cache lines: what the producer writes per message, what
// the consumer writes per message, and flags written only around sleeping and closing. Each side
// also caches the other's index and reloads it only when the cached value says full (or empty), so
// a message in flight moves few cache lines between cores.
/** Bytes written (a wrapping int32 counter); producer. */
export const WRITE = 0;
/** Messages written (wrapping); producer. */
export const WRITTEN = 1;
/** Messages dropped by the `drop-oldest` policy (for metrics); producer. */
export const DROPPED = 2;
/** Messages discarded because the sink is gone (sent after it, or left in the ring); producer and Nexus. */
export const DISCARDED = 3;
/**
 * Payload bytes written (the encoded messages without their prefix and padding; a wrapping int32
 * counter, for metrics); producer, with a plain store (only `Transport.stats` reads it).
 */
export const PAYLOAD = 4;
/** Bytes consumed or dropped (wrapping); consumer, and the producer under `drop-oldest` (CAS). */
export const READ = 16;
/** Messages consumed or dropped (wrapping); as `READ`. */
export const READ_COUNT = 17;
/** 1 while the producer sleeps waiting for room (`block` policy); producer. */
export const PRODUCER_SLEEPING = 32;
/** Bumped (and notified) to wake a producer sleeping for room. */
export const SPACE_SEQ = 33;
/** 1 once the consumer closed its link: the producer then discards messages for this sink. */
export const CONSUMER_CLOSED = 34;
/** 1 once the producer is gone: a consumer that finds every ring ended and empty stops waiting. */
export const PRODUCER_CLOSED = 35;
/** Bytes before the data area of a ring buffer. */
export const HEADER_BYTES = 192;

// Doorbell of a sink endpoint (Int32 slots), shared by every ring feeding it.
/** Bumped (and notified) by a producer that published while the consumer sleeps. */
export const BELL_SEQ = 0;
/** 1 while the consumer sleeps on `BELL_SEQ`. */
export const BELL_SLEEPING = 1;
/** Bytes of a doorbell buffer (one cache line). */
export const BELL_BYTES = 64;

// Transport-wide control word, one per plan.
/** 1 once `Transport.close()` ran: every link of the plan is closed. */
export const CONTROL_CLOSED = 0;
/** Bytes of the control buffer. */
export const CONTROL_BYTES = 64;

/** Bytes of the length prefix of a record. */
export const PREFIX_BYTES = 4;

/**
 * Bytes a record of `length` payload bytes takes in a ring: the int32 length prefix plus the
 * payload rounded up to 4, so every prefix is aligned and never wraps around the ring's end.
 */
export function recordBytes(length: number): number {
  return PREFIX_BYTES + ((length + 3) & ~3);
}

/** One ring as the consumer's descriptor lists it. */
export interface InRingDescriptor {
  /** Header (`HEADER_BYTES`) followed by the data area (a power of two). */
  buffer: SharedArrayBuffer;
  /** Messages the ring holds before its policy applies. */
  capacity: number;
  policy: LinkPolicy;
  /** Connection (YAML key) of the edge. */
  connection: string;
  /** `Actor.link` of the producer. */
  peer: string;
}

/** One ring as the producer's descriptor lists it. */
export interface OutRingDescriptor extends InRingDescriptor {
  /** Doorbell of the sink endpoint this ring feeds. */
  doorbell: SharedArrayBuffer;
}

/** Descriptor of the sink side of an endpoint. */
export interface LocalInDescriptor extends LinkDescriptor {
  direction: 'in';
  transport: 'local';
  control: SharedArrayBuffer;
  doorbell: SharedArrayBuffer;
  rings: InRingDescriptor[];
  /** Spin iterations before sleeping. */
  spin: number;
}

/** Descriptor of the source side of an endpoint. */
export interface LocalOutDescriptor extends LinkDescriptor {
  direction: 'out';
  transport: 'local';
  control: SharedArrayBuffer;
  rings: OutRingDescriptor[];
  /** Spin iterations before sleeping. */
  spin: number;
}

/** A ring opened for reading or writing: typed views over its buffer. */
export interface RingViews {
  header: Int32Array<SharedArrayBuffer>;
  data8: Uint8Array<SharedArrayBuffer>;
  data32: Int32Array<SharedArrayBuffer>;
  /** The data area again, for reading multi-byte numbers of a record in place. */
  view: DataView<SharedArrayBuffer>;
  /** Data bytes (a power of two). */
  size: number;
  mask: number;
  /** Largest payload the ring can ever hold. */
  maxLength: number;
}

/** Typed views over a ring buffer. */
export function ringViews(buffer: SharedArrayBuffer): RingViews {
  const size = buffer.byteLength - HEADER_BYTES;
  return {
    header: new Int32Array(buffer, 0, HEADER_BYTES / 4),
    data8: new Uint8Array(buffer, HEADER_BYTES, size),
    data32: new Int32Array(buffer, HEADER_BYTES, size / 4),
    view: new DataView(buffer, HEADER_BYTES, size),
    size,
    mask: size - 1,
    maxLength: size - PREFIX_BYTES,
  };
}

const pause = (Atomics as { pause?: () => void }).pause;

/**
 * One step of a spin-wait: `Atomics.pause()` where the runtime has it (Node 24+, Bun, Deno), else
 * nothing — the caller's own atomic load of the ring indices is then the (short) loop body.
 */
export const relax: () => void = pause === undefined ? () => {} : () => pause.call(Atomics);

/**
 * Wakes whoever sleeps on `words[index]`: bumps the word (so a sleeper that has not yet started its
 * `waitAsync` sees a changed value) and notifies.
 */
export function wake(words: Int32Array<SharedArrayBuffer>, index: number): void {
  Atomics.add(words, index, 1);
  Atomics.notify(words, index);
}

/**
 * A copy of the record of `length` payload bytes starting at data byte `start` (it may wrap around
 * the ring's end), in memory of its own.
 */
export function copyRecord(ring: RingViews, start: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  const first = ring.size - start;
  if (length <= first) bytes.set(ring.data8.subarray(start, start + length));
  else {
    bytes.set(ring.data8.subarray(start), 0);
    bytes.set(ring.data8.subarray(0, length - first), first);
  }
  return bytes;
}
