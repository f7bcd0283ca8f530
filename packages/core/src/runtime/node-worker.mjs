// Worker bootstrap of the `node:worker_threads` workers of the Node and Deno adapters. Plain
// JavaScript because Node 20 cannot start a `.ts` worker entry, even under tsx: on Node, register
// tsx's loader in this thread first, then import the entry (Deno runs TypeScript natively).
// The message handler is attached before anything else, and messages that arrive before the entry
// listens are buffered here (Deno drops them otherwise, Node buffers; the buffer makes the
// behaviour the same everywhere). The parent posts nothing before our `__improv_hello`.
import { parentPort, workerData } from 'node:worker_threads';

const buffered = [];
let deliver;
const onMessage = (message) => {
  if (deliver) deliver(message);
  else buffered.push(message);
};
parentPort.on('message', onMessage);

/** @type {import('./adapter.ts').WorkerEndpoint} */
const endpoint = {
  postMessage(message, transfer) {
    parentPort.postMessage(message, transfer);
  },
  onMessage(listener) {
    deliver = listener;
    for (const message of buffered.splice(0)) listener(message);
  },
  close() {
    // Deno's parentPort has no close(); without a message listener the worker ends when idle, as
    // on Node after close().
    if (typeof parentPort.close === 'function') parentPort.close();
    else parentPort.off('message', onMessage);
  },
};

if (globalThis.Deno === undefined) {
  const { register } = await import('tsx/esm/api');
  register();
} else {
  // Deno's `stdout: true` writes a worker's output through to the terminal as well: it comes as messages.
  const { postWrites } = await import('./worker-output.mjs');
  postWrites((message) => parentPort.postMessage(message));
}
const entry = await import(workerData.entry);
if (typeof entry.runWorker !== 'function') {
  throw new TypeError(`worker entry ${workerData.entry} does not export a runWorker(endpoint) function`);
}
const running = entry.runWorker(endpoint);
parentPort.postMessage({ type: '__improv_hello' });
await running;
