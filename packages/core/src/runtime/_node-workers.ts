/**
 * Workers over `node:worker_threads`, shared by the Node and Deno adapters (package-private). Each
 * worker runs `node-worker.mjs`, which attaches its message handler first, buffers what arrives
 * until the entry listens, and then posts the ready handshake (`__improv_hello`); nothing is posted
 * to the worker before that, because Deno drops such messages.
 *
 * Deno has web Workers too, and they start faster, but a Deno web Worker stuck in a loop is not
 * ended by `terminate()` (it keeps spinning and the process never exits) and it reports neither its
 * end nor an exit code; Deno's `worker_threads` does all three, and honours `resourceLimits`.
 * @module
 */
import { Worker } from 'node:worker_threads';
import type { SpawnWorkerOptions, WorkerHandle } from './adapter.ts';

const bootstrapUrl = new URL('./node-worker.mjs', import.meta.url);
const helloType = '__improv_hello';

/** Starts a `worker_threads` worker; resolves once its handshake arrived, rejects if it fails to load. */
export function spawnThreadWorker(options: SpawnWorkerOptions): Promise<WorkerHandle> {
  const worker = new Worker(bootstrapUrl, {
    name: options.name,
    workerData: { entry: options.entry },
    ...(options.maxHeapMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb } }),
  });
  const messageListeners: ((message: unknown) => void)[] = [];
  const errorListeners: ((error: Error) => void)[] = [];
  const exitListeners: ((code: number) => void)[] = [];
  let exitCode: number | undefined;

  const handle: WorkerHandle = {
    postMessage: (message) => worker.postMessage(message),
    onMessage: (listener) => void messageListeners.push(listener),
    onError: (listener) => void errorListeners.push(listener),
    onExit(listener) {
      if (exitCode === undefined) exitListeners.push(listener);
      else listener(exitCode);
    },
    async terminate() {
      if (exitCode === undefined) await worker.terminate();
    },
  };

  return new Promise((resolve, reject) => {
    let ready = false;
    worker.on('message', (message: unknown) => {
      if (!ready && (message as { type?: unknown } | null)?.type === helloType) {
        ready = true;
        resolve(handle);
        return;
      }
      for (const listener of messageListeners) listener(message);
    });
    worker.on('error', (error: Error) => {
      if (!ready) reject(error);
      for (const listener of errorListeners) listener(error);
    });
    worker.on('exit', (code: number) => {
      exitCode = code;
      if (!ready) reject(new Error(`worker "${options.name}" exited with code ${code} before it was ready`));
      for (const listener of exitListeners.splice(0)) listener(code);
    });
  });
}
