/**
 * The Deno runtime adapter: workers are Deno's `node:worker_threads` (Deno runs TypeScript
 * natively, so no loader); signals through `Deno.addSignalListener`; files and paths through Deno's
 * implementation of Node's built-in modules (the same code as on Node and Bun).
 *
 * Why not Deno's web `Worker`, which starts in about half the time: `terminate()` does not end a
 * web Worker stuck in a loop (it keeps spinning and the process never exits), and a web Worker
 * reports neither its end nor an exit code. Deno quirks handled here and in `node-worker.mjs`:
 * messages posted to a worker before it listens are lost (ready handshake), `parentPort` has no
 * `close()` (the bootstrap removes its listener instead), and a pending `Atomics.waitAsync` does
 * not keep a worker alive (the open channel does), and `terminate()` resolves (and `exit` is
 * emitted) before the thread has stopped — 80–120 ms later for a worker that awaits, which
 * `terminate()` here waits out; a worker spinning in a loop that never yields keeps its core busy
 * until the process ends (measured on 2.9.6; nothing in the adapter can stop it). `maxHeapMb` is applied (`resourceLimits`): a
 * worker stops growing at the limit, but Deno reports it out of memory only if it reaches the limit
 * while running a timer callback; otherwise (say, inside a runStep loop that yields through
 * setImmediate) the worker just stops, and Nexus ends it with `terminate()` when quit times out.
 *
 * @example
 * ```ts
 * import { createDenoRuntime } from '@improv/core/runtime/deno';
 * const nexus = await createNexus({ config: 'pipeline.yaml', runtime: createDenoRuntime(), store, transport });
 * ```
 * @module
 */
import { RuntimeUnavailableError } from '../errors.ts';
import { nodeFiles, nodePath, shutdownSignals } from './_node-api.ts';
import { spawnProcess } from './_node-processes.ts';
import { checkPythonActor } from './_node-python.ts';
import { spawnThreadWorker } from './_node-workers.ts';
import type { RuntimeAdapter, ShutdownSignal } from './adapter.ts';
import { currentRuntimeName } from './current.ts';
import { findRuntime } from './node-binaries.ts';

/** Twice the longest run-on measured after terminate() on Deno 2.9.6. */
const DENO_TERMINATE_GRACE_MS = 250;

/** The members of Deno's global this adapter uses (core is type-checked without Deno's types). */
interface DenoGlobal {
  version: { deno: string };
  addSignalListener(signal: ShutdownSignal, handler: () => void): void;
  removeSignalListener(signal: ShutdownSignal, handler: () => void): void;
}

/** Creates the Deno adapter. Throws `RuntimeUnavailableError` when not running in Deno. */
export function createDenoRuntime(): RuntimeAdapter {
  const deno = (globalThis as { Deno?: DenoGlobal }).Deno;
  if (deno === undefined) {
    throw new RuntimeUnavailableError(
      `createDenoRuntime(): this program runs in ${currentRuntimeName()}, not Deno; run it with deno run -A, or use detectRuntime() for the adapter of the runtime in use`,
    );
  }
  return {
    name: 'deno',
    version: deno.version.deno,
    heapLimit: true,
    // terminate() resolves while the thread still runs (80–120 ms for a worker that awaits; a worker
    // spinning in a loop that never yields is not stopped at all): wait out the first.
    spawnProcess,
    checkPythonActor,
    findRuntime,
    spawnWorker: (options) =>
      spawnThreadWorker(options, { terminateGraceMs: DENO_TERMINATE_GRACE_MS, output: 'messages' }),
    onShutdownSignal(handler) {
      const listeners = shutdownSignals.map((signal) => [signal, () => handler(signal)] as const);
      for (const [signal, listener] of listeners) deno.addSignalListener(signal, listener);
      return () => {
        for (const [signal, listener] of listeners) deno.removeSignalListener(signal, listener);
      };
    },
    ...nodeFiles,
    path: nodePath,
  };
}
