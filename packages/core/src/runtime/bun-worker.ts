/**
 * Worker bootstrap of the Bun adapter: the module its web `Worker`s start (Bun runs TypeScript
 * natively, so no loader is registered). It does what `node-worker.mjs` does elsewhere — attach
 * the message handler before anything else, buffer what arrives until the entry listens, import the
 * entry, call its `runWorker(endpoint)`, then post `__improv_hello` — and reports an uncaught error
 * or unhandled rejection as `__improv_error` with its name and stack, which Bun's `error` event on
 * the parent lacks.
 * @module
 */
import { workerData } from 'node:worker_threads';
import { serializeError } from '../errors.ts';
import type { WorkerEndpoint } from './adapter.ts';
import { postWrites } from './worker-output.mjs';

interface WorkerScope {
  postMessage(message: unknown, transfer?: readonly ArrayBuffer[]): void;
  addEventListener(type: string, listener: (event: never) => void): void;
  removeEventListener(type: string, listener: (event: never) => void): void;
}

const scope = globalThis as unknown as WorkerScope;
const buffered: unknown[] = [];
let deliver: ((message: unknown) => void) | undefined;
const onMessage = (event: { data: unknown }) => {
  if (deliver) deliver(event.data);
  else buffered.push(event.data);
};
scope.addEventListener('message', onMessage);

function reportError(error: unknown): void {
  try {
    scope.postMessage({ type: '__improv_error', error: serializeError(error) });
  } catch {
    // The channel is closed already; the parent still sees the exit.
  }
}
// Bun ends the worker after either; the report only gives the parent the real error.
scope.addEventListener('error', (event: { error?: unknown; message?: string }) =>
  reportError(event.error ?? event.message),
);
scope.addEventListener('unhandledrejection', (event: { reason?: unknown }) => reportError(event.reason));

// Bun's web workers cannot hand their stdout and stderr to the parent: the writes come as messages.
postWrites((message) => scope.postMessage(message));

const endpoint: WorkerEndpoint = {
  postMessage: (message, transfer) => scope.postMessage(message, transfer),
  onMessage(listener) {
    deliver = listener;
    for (const message of buffered.splice(0)) listener(message);
  },
  // Bun's worker scope has no close(); without a message listener the worker ends when idle.
  close: () => scope.removeEventListener('message', onMessage),
};

// Bun drops a query string from a worker's import.meta.url, so the entry comes as workerData.
const entryUrl = (workerData as { entry: string }).entry;
const entry = (await import(entryUrl)) as { runWorker?: unknown };
if (typeof entry.runWorker !== 'function') {
  throw new TypeError(`worker entry ${entryUrl} does not export a runWorker(endpoint) function`);
}
const running = (entry.runWorker as (endpoint: WorkerEndpoint) => unknown)(endpoint);
scope.postMessage({ type: '__improv_hello' });
await running;
