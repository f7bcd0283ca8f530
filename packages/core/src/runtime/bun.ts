/**
 * The Bun runtime adapter: workers are web `Worker`s running `bun-worker.ts` (they start in about
 * half the time of Bun's `worker_threads`, and Bun runs TypeScript natively, so no loader is
 * needed); files, paths and signals go through Bun's implementation of Node's built-in modules.
 *
 * Bun quirks handled here: messages posted to a worker before it listens are lost (ready
 * handshake); the end of a web Worker is only told by Bun's own `close` event; a worker that dies
 * of an unhandled rejection reports exit code 0 (we report 1, as Node does), and its `error` event
 * carries a printed code frame instead of the error (the bootstrap sends the real one); workers
 * have no per-worker heap limit, so `maxHeapMb` is ignored (`heapLimit: false`).
 *
 * @example
 * ```ts
 * import { createBunRuntime } from '@improv/core/runtime/bun';
 * const nexus = await createNexus({ config: 'pipeline.yaml', runtime: createBunRuntime(), store, transport });
 * ```
 * @module
 */

import { siblingModule } from '../_module-url.ts';
import { deserializeError, RuntimeUnavailableError, type SerializedError } from '../errors.ts';
import { nodeFiles, nodePath, onProcessSignal } from './_node-api.ts';
import { isWorkerOutput, workerOutputLines } from './_node-output-lines.ts';
import { spawnProcess } from './_node-processes.ts';
import { checkPythonActor } from './_node-python.ts';
import { createWorkerEvents } from './_worker-events.ts';
import type { RuntimeAdapter, SpawnWorkerOptions, Transferable, WorkerHandle } from './adapter.ts';
import { currentRuntimeName } from './current.ts';
import { findRuntime } from './node-binaries.ts';

/** Creates the Bun adapter. Throws `RuntimeUnavailableError` when not running in Bun. */
export function createBunRuntime(): RuntimeAdapter {
  const bun = (globalThis as { Bun?: { version: string } }).Bun;
  if (bun === undefined) {
    throw new RuntimeUnavailableError(
      `createBunRuntime(): this program runs in ${currentRuntimeName()}, not Bun; run it with bun, or use detectRuntime() for the adapter of the runtime in use`,
    );
  }
  return {
    name: 'bun',
    version: bun.version,
    heapLimit: false,
    spawnProcess,
    checkPythonActor,
    findRuntime,
    spawnWorker,
    onShutdownSignal: onProcessSignal,
    ...nodeFiles,
    path: nodePath,
  };
}

/** The parts of Bun's web Worker this adapter uses (core is type-checked without Bun's types). */
interface BunWorker {
  postMessage(message: unknown, transfer?: readonly Transferable[]): void;
  terminate(): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'error', listener: (event: { message?: string; preventDefault(): void }) => void): void;
  addEventListener(type: 'close', listener: (event: { code?: number }) => void): void;
}
type BunWorkerConstructor = new (
  url: string,
  options: { type: 'module'; name: string; workerData: { entry: string } },
) => BunWorker;

const bootstrapUrl = siblingModule(import.meta.url, './bun-worker');

function spawnWorker(options: SpawnWorkerOptions): Promise<WorkerHandle> {
  const WorkerClass = (globalThis as unknown as { Worker: BunWorkerConstructor }).Worker;
  const worker = new WorkerClass(bootstrapUrl, {
    type: 'module',
    name: options.name,
    workerData: { entry: options.entry },
  });
  let error: Error | undefined;
  let terminated = false;
  const output = workerOutputLines();
  let markExited!: () => void;
  const exited = new Promise<void>((resolve) => {
    markExited = resolve;
  });
  const events = createWorkerEvents(
    (message, transfer) => worker.postMessage(message, transfer),
    async () => {
      terminated = true;
      worker.terminate();
      await exited;
    },
  );

  return new Promise((resolve, reject) => {
    let ready = false;
    const failed = (cause: Error) => {
      if (error) return;
      error = cause;
      if (!ready) reject(cause);
      events.error(cause);
    };
    worker.addEventListener('message', (event) => {
      const message = event.data as { type?: unknown; error?: SerializedError } | null;
      if (isWorkerOutput(message)) {
        output.take(message);
      } else if (message?.type === '__improv_error' && message.error) {
        failed(deserializeError(message.error));
      } else if (!ready && message?.type === '__improv_hello') {
        ready = true;
        resolve({ ...events.handle, onOutput: (listener) => void output.listeners.push(listener) });
      } else {
        events.message(message);
      }
    });
    worker.addEventListener('error', (event) => {
      event.preventDefault();
      // Usually the bootstrap's `__improv_error`, with the real error, came first.
      failed(new Error(event.message || `worker "${options.name}" died of an uncaught error`));
    });
    // Bun emits `close` after the worker's last message, with its exit code.
    worker.addEventListener('close', (event) => {
      let code = terminated ? 1 : (event.code ?? 0);
      if (error && code === 0) code = 1;
      if (!ready) reject(new Error(`worker "${options.name}" exited with code ${code} before it was ready`));
      output.end();
      events.exit(code);
      markExited();
    });
  });
}
