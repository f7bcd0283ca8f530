// Bootstrap of an actor process (see _node-processes.ts): connects to the socket its parent made for it,
// proves itself with the token, then runs the entry a worker would run (`runWorker(endpoint)`) over
// the control channel, and posts the ready handshake. Plain JavaScript because Node 20 cannot start
// a `.ts` entry: on Node, tsx's loader is registered first (Bun and Deno run TypeScript natively).
// When the channel is lost (the parent died or closed it) the process ends: no actor outlives its
// Nexus. An uncaught error is reported on the channel before the process ends with code 1.
import { connect } from 'node:net';
import process from 'node:process';
import { Worker } from 'node:worker_threads';

const env = process.env;
const socketPath = env.IMPROV_PROCESS_SOCKET;
const token = env.IMPROV_PROCESS_TOKEN;
const entryUrl = env.IMPROV_PROCESS_ENTRY;
const channelUrl = env.IMPROV_PROCESS_CHANNEL;
if (!socketPath || !token || !entryUrl || !channelUrl) {
  console.error('node-process-child.mjs: this is the bootstrap of an improv actor process; Nexus starts it, not you');
  process.exit(2);
}
// The actor has no business with these.
for (const name of [
  'IMPROV_PROCESS_SOCKET',
  'IMPROV_PROCESS_TOKEN',
  'IMPROV_PROCESS_ENTRY',
  'IMPROV_PROCESS_CHANNEL',
]) {
  delete env[name];
}

// A Nexus that dies takes this process with it, even while the actor never yields (see the watchdog).
const watchdog = new Worker(new URL('./node-process-watchdog.mjs', import.meta.url), {
  workerData: { parent: process.ppid },
});
watchdog.unref();

if (globalThis.Deno === undefined && globalThis.Bun === undefined) {
  const { register } = await import('tsx/esm/api');
  register();
}
const { ProcessChannel } = await import(channelUrl);
const socket = connect(socketPath);
await new Promise((resolve, reject) => {
  socket.once('connect', resolve);
  socket.once('error', reject);
});
const channel = new ProcessChannel(socket, 'child');
channel.send({ token });

let ending = false;
/** Ends the process once what was sent has left (bounded: a parent that stopped reading must not keep us). */
function end(code) {
  if (ending) return;
  ending = true;
  setTimeout(() => process.exit(code), 2000).unref?.();
  channel.close().then(() => process.exit(code));
}
channel.onClose(() => end(0));

function report(error) {
  const serialized =
    error instanceof Error
      ? { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) }
      : { name: 'Error', message: String(error) };
  channel.send({ type: '__improv_error', error: serialized });
  end(1);
}
process.on('uncaughtException', report);
// A Ctrl-C in the terminal, the SIGTERM of `timeout`, systemd or `docker stop`, and the SIGHUP of a
// closed terminal reach the whole process group: Nexus takes them and quits every actor in order
// (each stop() runs), so the actor process must not end on them by itself. Nexus ends it with
// SIGKILL if it must.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('SIGHUP', () => {});
process.on('unhandledRejection', report);

/** @type {import('./adapter.ts').WorkerEndpoint} */
const endpoint = {
  postMessage: (message) => channel.send(message),
  onMessage: (listener) => channel.onMessage(listener),
  close: () => end(0),
};

const entry = await import(entryUrl);
if (typeof entry.runWorker !== 'function') {
  report(new TypeError(`process entry ${entryUrl} does not export a runWorker(endpoint) function`));
} else {
  const running = entry.runWorker(endpoint);
  channel.send({ type: '__improv_hello' });
  await running;
}
