/**
 * Worker entry of the runtime conformance suite (package-private). It answers the suite's commands
 * so each case can provoke one behaviour of the worker API: echo, a burst of messages before
 * closing, an uncaught error, an unhandled rejection, `process.exit`, waiting in
 * `Atomics.waitAsync`, staying busy, outgrowing the heap.
 * @module
 */
import { describeError } from '../errors.ts';
import type { WorkerEndpoint } from '../runtime/adapter.ts';

/** Commands the suite sends. */
export type RuntimeWorkerCommand =
  | { type: 'ping'; value: unknown }
  | { type: 'burst'; count: number }
  | { type: 'quit' }
  | { type: 'crash' }
  | { type: 'reject' }
  | { type: 'exit'; code: number }
  | { type: 'wait'; buffer: SharedArrayBuffer }
  | { type: 'busy' }
  | { type: 'grow' }
  | { type: 'write'; stdout: string[]; stderr: string };

/** What the worker posts back. */
export type RuntimeWorkerReply =
  | { type: 'echo'; value: unknown; described: string }
  | { type: 'burst'; index: number }
  | { type: 'waiting' }
  | { type: 'woken'; value: number }
  | { type: 'busy' }
  | { type: 'written' };

const retained: unknown[] = [];

interface WritableLike {
  write(chunk: string | Uint8Array): boolean;
}

/** Handles the suite's commands on `endpoint`. */
export function answer(endpoint: WorkerEndpoint): void {
  const reply = (message: RuntimeWorkerReply) => endpoint.postMessage(message);
  endpoint.onMessage((message) => {
    const command = message as RuntimeWorkerCommand;
    switch (command.type) {
      case 'ping':
        // describeError comes from another .ts module: TypeScript dependencies load too.
        reply({ type: 'echo', value: command.value, described: describeError({ name: 'TypeError', message: 'x' }) });
        return;
      case 'burst':
        for (let index = 0; index < command.count; index++) reply({ type: 'burst', index });
        endpoint.close();
        return;
      case 'quit':
        endpoint.close();
        return;
      case 'crash':
        setTimeout(() => {
          throw new RangeError('crashed on purpose');
        });
        return;
      case 'reject':
        void Promise.reject(new TypeError('rejected on purpose'));
        return;
      case 'write': {
        // Straight to the streams, past the console: what native code or a library would do.
        const { stdout, stderr } = (globalThis as unknown as { process: Record<string, WritableLike> }).process;
        for (const piece of command.stdout) stdout!.write(piece);
        stderr!.write(new TextEncoder().encode(command.stderr));
        reply({ type: 'written' });
        return;
      }
      case 'exit':
        (globalThis as unknown as { process: { exit(code: number): never } }).process.exit(command.code);
        return;
      case 'wait': {
        const words = new Int32Array(command.buffer);
        const result = Atomics.waitAsync(words, 0, 0);
        reply({ type: 'waiting' });
        void Promise.resolve(result.value).then(() => reply({ type: 'woken', value: Atomics.load(words, 0) }));
        return;
      }
      case 'busy':
        // A ref'd timer: the worker would never end on its own.
        setInterval(() => {}, 1000);
        reply({ type: 'busy' });
        return;
      case 'grow': {
        // Allocates in steps that yield, as an actor's runStep loop does: Deno stops a worker at its
        // heap limit only once it yields (in a loop that never yields it just stops growing).
        const grow = () => {
          for (let step = 0; step < 16; step++) retained.push(new Array(1 << 16).fill(retained.length));
          setTimeout(grow, 0);
        };
        grow();
        return;
      }
    }
  });
}

/** Entry point: answers at once. */
export function runWorker(endpoint: WorkerEndpoint): void {
  answer(endpoint);
}
