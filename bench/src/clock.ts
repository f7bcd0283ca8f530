/**
 * One clock for every worker of the process, in microseconds. `performance.now()` counts from each
 * thread's own `timeOrigin`, so a timestamp taken in one worker means nothing in another unless the
 * origins are added back. Adding the full Unix time (~1.8e12 ms) would leave only ~0.25 µs of
 * double precision; counting from a shared `epochMs` near now keeps it at nanoseconds. Checked on
 * this machine: a timestamp crosses between two spinning workers in 0.0–0.5 µs both ways on Node,
 * Bun and Deno, so the origins agree to well under a microsecond.
 * @module
 */
import process from 'node:process';

/** A Unix time in ms for {@link createClock}, taken once in the main thread and passed to workers. */
export function newEpoch(): number {
  return Math.floor(performance.timeOrigin);
}

/** Microseconds since `epochMs`, comparable across the workers of one process. */
export function createClock(epochMs: number): () => number {
  const offsetUs = (performance.timeOrigin - epochMs) * 1000;
  return () => offsetUs + performance.now() * 1000;
}

/**
 * What to add to CLOCK_MONOTONIC in µs (Python's `time.monotonic_ns() / 1000`) to read the clock of
 * {@link createClock}, for a process that is not a worker of this one (`--placement python`).
 * Node's `process.hrtime` reads CLOCK_MONOTONIC itself, and every worker's clock agrees with this
 * thread's, so the offset is exact up to the time of one reading: it is taken from the tightest of a
 * few bracketed readings. Node only — Bun's and Deno's `process.hrtime` count from their own start —
 * and the wall clock will not do instead: a process's `performance.timeOrigin` is anchored to it
 * only within some tens of µs.
 */
export function monotonicOffsetUs(epochMs: number): number {
  const clock = createClock(epochMs);
  let tightest = Number.POSITIVE_INFINITY;
  let offset = 0;
  for (let reading = 0; reading < 50; reading++) {
    const before = clock();
    const monotonic = Number(process.hrtime.bigint()) / 1000;
    const after = clock();
    if (after - before < tightest) {
      tightest = after - before;
      offset = (before + after) / 2 - monotonic;
    }
  }
  return offset;
}
