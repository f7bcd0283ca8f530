/**
 * Runs `run` once the event loop has turned: after pending I/O and timers that are due, not in the
 * current microtask chain (`setImmediate` where the runtime has it, else a 0 ms timer).
 * @module
 */
export const nextTurn: (run: () => void) => void =
  typeof setImmediate === 'function' ? (run) => setImmediate(run) : (run) => setTimeout(run, 0);
