/**
 * The listener bookkeeping every adapter's `WorkerHandle` shares (package-private): message, error
 * and exit listeners, and the rule that an `onExit` listener added after the end is called at once.
 * The adapters only differ in how they post, terminate and learn of these events.
 * @module
 */
import type { Transferable, WorkerHandle } from './adapter.ts';

/** A handle plus the functions an adapter calls when its worker reports something. */
export interface WorkerEvents {
  handle: WorkerHandle;
  message(message: unknown): void;
  error(error: Error): void;
  exit(code: number): void;
  /** The exit code once the worker has ended. */
  exitCode(): number | undefined;
}

/** Builds a handle whose `postMessage` and `terminate` are the adapter's own. */
export function createWorkerEvents(
  post: (message: unknown, transfer?: readonly Transferable[]) => void,
  terminate: () => Promise<void>,
): WorkerEvents {
  const messageListeners: ((message: unknown) => void)[] = [];
  const errorListeners: ((error: Error) => void)[] = [];
  const exitListeners: ((code: number) => void)[] = [];
  let exitCode: number | undefined;
  return {
    handle: {
      postMessage: post,
      onMessage: (listener) => void messageListeners.push(listener),
      onError: (listener) => void errorListeners.push(listener),
      onExit(listener) {
        if (exitCode === undefined) exitListeners.push(listener);
        else listener(exitCode);
      },
      async terminate() {
        if (exitCode === undefined) await terminate();
      },
    },
    message(message) {
      for (const listener of messageListeners) listener(message);
    },
    error(error) {
      for (const listener of errorListeners) listener(error);
    },
    exit(code) {
      exitCode = code;
      for (const listener of exitListeners.splice(0)) listener(code);
    },
    exitCode: () => exitCode,
  };
}
