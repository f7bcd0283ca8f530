// What a worker writes to its own process.stdout and process.stderr, posted to its parent as
// `__improv_output` messages (see `_node-output-lines.ts`), so that it comes to the pipeline log line by
// line under the actor's log budget, as a Node worker's does (Node hands a worker's streams to its
// parent itself: `stdout: true`). Used where the runtime cannot: Bun's web workers, and Deno, whose
// `stdout: true` also writes everything through to the terminal. Plain JavaScript: the Deno branch
// of `node-worker.mjs` imports it too.

/**
 * @param {(message: { type: '__improv_output', stream: 'stdout' | 'stderr', text: string }) => void} post
 */
export function postWrites(post) {
  for (const stream of /** @type {const} */ (['stdout', 'stderr'])) {
    const decoder = new TextDecoder();
    const target = process[stream];
    /** @type {(chunk: string | Uint8Array, encoding?: unknown, callback?: unknown) => boolean} */
    const write = (chunk, encoding, callback) => {
      const done = typeof encoding === 'function' ? encoding : callback;
      const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
      if (text !== '') post({ type: '__improv_output', stream, text });
      if (typeof done === 'function') queueMicrotask(() => done());
      return true;
    };
    target.write = /** @type {typeof target.write} */ (write);
  }
}
