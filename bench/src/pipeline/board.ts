/**
 * The bench's own control board between the main thread and the bench actors: a SharedArrayBuffer
 * passed in the actors' options (object configs hand options to the workers by structured clone, so
 * a shared buffer stays shared). The main thread writes a phase's parameters and bumps the phase
 * word; sources run the phase; every actor writes its counters and then the phase number it
 * finished. Nothing of this travels over the links being measured.
 * @module
 */

/** Int32 words. */
export const W_PHASE = 0;
/** `W_DONE + actor index`: the last phase that actor finished. */
export const W_DONE = 8;
/** Most actors a board serves. */
export const MAX_ACTORS = 16;

/** Float64 parameter slots of the current phase (written before `W_PHASE` is bumped). */
export const P_MODE = 0;
export const P_PATH = 1;
export const P_SIZE = 2;
/** Latency: messages each source sends. */
export const P_COUNT = 3;
/** Latency: microseconds between two messages of one source. */
export const P_INTERVAL_US = 4;
/** Throughput: how long each source sends, in microseconds. */
export const P_DURATION_US = 5;
/** 1 when sources delete their keys (fan-out: one key, several readers), 0 when the sink does. */
export const P_SOURCE_DELETES = 6;
/** The link capacity, for the source's delete lag under fan-out. */
export const P_CAPACITY = 7;

/** Float64 counters of one actor (`STATS + index * STATS_STRIDE + slot`). */
export const S_SENT = 0;
export const S_RECEIVED = 1;
export const S_FIRST_SEND_US = 2;
export const S_LAST_SEND_US = 3;
export const S_END_US = 4;
/** Messages whose data did not arrive intact (wrong length or stamp): must stay 0. */
export const S_ERRORS = 5;

export const MODE_LATENCY = 1;
export const MODE_THROUGHPUT = 2;
/** Wakes the sources without work (before stop). */
export const MODE_IDLE = 3;

export const PATH_PUT = 1;
export const PATH_ALLOCATE = 2;
export const PATH_INLINE = 3;
/** The source puts a new array and sends its key; the sink deletes the key without reading it. */
export const PATH_PUT_DELETE = 4;
export type PathName = 'put' | 'allocate' | 'inline' | 'put-delete';
export const pathCodes: Record<PathName, number> = {
  put: PATH_PUT,
  allocate: PATH_ALLOCATE,
  inline: PATH_INLINE,
  'put-delete': PATH_PUT_DELETE,
};

const PARAMS_OFFSET = 256;
const STATS_OFFSET = 512;
const STATS_STRIDE = 8;

/** Typed views over a board buffer. */
export interface Board {
  buffer: SharedArrayBuffer;
  words: Int32Array<SharedArrayBuffer>;
  params: Float64Array<SharedArrayBuffer>;
  stats: Float64Array<SharedArrayBuffer>;
}

/** Bytes of a board. */
export const BOARD_BYTES = STATS_OFFSET + MAX_ACTORS * STATS_STRIDE * 8;

export function openBoard(buffer: SharedArrayBuffer): Board {
  return {
    buffer,
    words: new Int32Array(buffer, 0, PARAMS_OFFSET / 4),
    params: new Float64Array(buffer, PARAMS_OFFSET, (STATS_OFFSET - PARAMS_OFFSET) / 8),
    stats: new Float64Array(buffer, STATS_OFFSET, MAX_ACTORS * STATS_STRIDE),
  };
}

/** Index of `slot` of actor `index` in {@link Board.stats}. */
export function stat(index: number, slot: number): number {
  return index * STATS_STRIDE + slot;
}

/** What every bench actor gets in its options. */
export interface BenchActorOptions {
  board: SharedArrayBuffer;
  /** Latency samples in µs (Float64), one per message received; sinks only. */
  samples?: SharedArrayBuffer;
  /** This actor's counters on the board. */
  index: number;
  /** Sinks: how many sources feed them (each ends a phase with an end marker). */
  sources?: number;
  /** The clock's epoch (see clock.ts). */
  epochMs: number;
  /**
   * Actors in a Python process (`--placement python`): µs to add to CLOCK_MONOTONIC to read the
   * clock (`monotonicOffsetUs` of clock.ts).
   */
  clockOffsetUs?: number;
}

/** A message of the bench. `i` is -1 for the end marker of a throughput phase. */
export interface BenchMessage {
  /** Phase number. */
  p: number;
  /** Sequence number within the phase, or -1 for the end marker. */
  i: number;
  /** Send time (µs on the shared clock). */
  t: number;
  /** Store key (put, allocate). */
  k?: string;
  /** The data itself (inline). */
  d?: Uint8Array;
}
