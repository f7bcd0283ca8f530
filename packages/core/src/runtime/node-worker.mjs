// Worker bootstrap for the Node adapter. Plain JavaScript because Node 20 cannot start a `.ts`
// worker entry, even under tsx: register tsx's loader in this thread first, then import the entry.
// Messages that arrive before the entry attached its listener are buffered here (Bun and Deno drop
// them, Node buffers; the buffer makes the behaviour the same everywhere).
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

const buffered = [];
let deliver;
parentPort.on('message', (message) => {
  if (deliver) deliver(message);
  else buffered.push(message);
});

/** @type {import('./adapter.ts').WorkerEndpoint} */
const endpoint = {
  postMessage(message) {
    parentPort.postMessage(message);
  },
  onMessage(listener) {
    deliver = listener;
    for (const message of buffered.splice(0)) listener(message);
  },
  close() {
    parentPort.close();
  },
};

register();
const entry = await import(workerData.entry);
if (typeof entry.runWorker !== 'function') {
  throw new TypeError(`worker entry ${workerData.entry} does not export a runWorker(endpoint) function`);
}
const running = entry.runWorker(endpoint);
parentPort.postMessage({ type: '__improv_hello' });
await running;
