/**
 * Workers over `node:worker_threads`, shared by the Node and Deno adapters (package-private). Each
 * worker runs `node-worker.mjs`, which attaches its message handler first, buffers what arrives
 * until the entry listens, and then posts the ready handshake (`__improv_hello`); nothing is posted
 * to the worker before that, because Deno drops such messages.
 *
 * Deno has web Workers too, and they start faster, but a Deno web Worker stuck in a loop is not
 * ended by `terminate()` (it keeps spinning and the process never exits) and it reports neither its
 * end nor an exit code; Deno's `worker_threads` reports both, honours `resourceLimits`, and ends a
 * worker that awaits — after its `terminate()` has resolved (see {@link ThreadWorkerQuirks}).
 * @module
 */
import { Worker } from 'node:worker_threads';
import { forwardLines, isWorkerOutput, workerOutputLines } from './_node-output-lines.ts';
import { createWorkerEvents } from './_worker-events.ts';
import type { SpawnWorkerOptions, WorkerHandle } from './adapter.ts';

const bootstrapUrl = new URL('./node-worker.mjs', import.meta.url);
const helloType = '__improv_hello';

/** What differs between the runtimes that use these workers. */
export interface ThreadWorkerQuirks {
  /**
   * How long the thread may go on running after `worker.terminate()` has resolved (and `exit` was
   * emitted). Measured on Deno 2.9: a worker that awaits keeps running 80–120 ms more; `terminate()`
   * then waits this long, so that "resolves when it is gone" holds for what comes after (recovering
   * a store the worker was writing to). 0 on Node, where the promise keeps its word.
   */
  terminateGraceMs: number;
  /**
   * How the worker's own stdout and stderr come to {@link WorkerHandle.onOutput}: as the worker's
   * streams (`stdout: true`, Node), or as messages its bootstrap posts (Deno, whose `stdout: true`
   * also writes everything through to this process's terminal; see `worker-output.mjs`).
   */
  output: 'streams' | 'messages';
}

/** Starts a `worker_threads` worker; resolves once its handshake arrived, rejects if it fails to load. */
export function spawnThreadWorker(
  options: SpawnWorkerOptions,
  quirks: ThreadWorkerQuirks = { terminateGraceMs: 0, output: 'streams' },
): Promise<WorkerHandle> {
  const streams = quirks.output === 'streams';
  const worker = new Worker(bootstrapUrl, {
    name: options.name,
    workerData: { entry: options.entry },
    ...(streams ? { stdout: true, stderr: true } : {}),
    ...(options.maxHeapMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb } }),
  });
  const output = workerOutputLines();
  if (streams) {
    for (const stream of ['stdout', 'stderr'] as const) {
      forwardLines(worker[stream], (line) => output.line(line, stream));
    }
  }
  const events = createWorkerEvents(
    (message, transfer) => worker.postMessage(message, transfer as Parameters<Worker['postMessage']>[1]),
    async () => {
      await worker.terminate();
      if (quirks.terminateGraceMs > 0) await new Promise((resolve) => setTimeout(resolve, quirks.terminateGraceMs));
    },
  );

  return new Promise((resolve, reject) => {
    let ready = false;
    worker.on('message', (message: unknown) => {
      if (!ready && (message as { type?: unknown } | null)?.type === helloType) {
        ready = true;
        resolve({ ...events.handle, onOutput: (listener) => void output.listeners.push(listener) });
        return;
      }
      if (isWorkerOutput(message)) output.take(message);
      else events.message(message);
    });
    worker.on('error', (error: Error) => {
      if (!ready) reject(error);
      events.error(error);
    });
    worker.on('exit', (code: number) => {
      if (!ready) reject(new Error(`worker "${options.name}" exited with code ${code} before it was ready`));
      output.end();
      events.exit(code);
    });
  });
}
