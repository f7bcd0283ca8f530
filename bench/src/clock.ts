/**
 * One clock for every worker of the process, in microseconds. `performance.now()` counts from each
 * thread's own `timeOrigin`, so a timestamp taken in one worker means nothing in another unless the
 * origins are added back. Adding the full Unix time (~1.8e12 ms) would leave only ~0.25 µs of
 * double precision; counting from a shared `epochMs` near now keeps it at nanoseconds. Checked on
 * this machine: a timestamp crosses between two spinning workers in 0.0–0.5 µs both ways on Node,
 * Bun and Deno, so the origins agree to well under a microsecond.
 * @module
 */

/** A Unix time in ms for {@link createClock}, taken once in the main thread and passed to workers. */
export function newEpoch(): number {
  return Math.floor(performance.timeOrigin);
}

/** Microseconds since `epochMs`, comparable across the workers of one process. */
export function createClock(epochMs: number): () => number {
  const offsetUs = (performance.timeOrigin - epochMs) * 1000;
  return () => offsetUs + performance.now() * 1000;
}
