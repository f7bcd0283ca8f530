/**
 * Conformance suite of the runtime contract ({@link RuntimeAdapter}): every adapter's test file
 * calls it, in the runtime the adapter is for. It checks what Nexus relies on — TypeScript workers
 * start with a ready handshake and no message is lost, however late the entry starts listening; a
 * worker's end is reported with its exit code only after everything it posted was delivered;
 * uncaught errors, unhandled rejections and `process.exit()` are reported alike on every runtime;
 * `terminate()` ends even a busy worker; a worker that only waits in `Atomics.waitAsync` stays
 * alive; load failures reject with the reason; heap limits hold where the adapter says so; and the
 * file and path helpers behave like Node's.
 *
 * @example
 * ```ts
 * import { currentRuntimeName } from '@improv/core';
 * import { createBunRuntime } from '@improv/core/runtime/bun';
 * import { describeRuntimeConformance } from '@improv/core/testing';
 * import { describe } from 'vitest';
 *
 * describe.skipIf(currentRuntimeName() !== 'bun')('bun', () => {
 *   describeRuntimeConformance({ name: 'bun', runtime: createBunRuntime });
 * });
 * ```
 * @module
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { siblingModule } from '../_module-url.ts';
import type { RuntimeAdapter, WorkerHandle } from '../runtime/adapter.ts';
import type { RuntimeWorkerCommand, RuntimeWorkerReply } from './_runtime-worker.ts';

/** What the suite needs. */
export interface RuntimeConformanceOptions {
  /** Shown in the test names. */
  name: string;
  /**
   * The adapter, or a function that creates it. A function is called only when the suite runs, so a
   * test file can register the suite of a runtime it may not be running in and skip it.
   */
  runtime: RuntimeAdapter | (() => RuntimeAdapter | Promise<RuntimeAdapter>);
}

const workerEntry = siblingModule(import.meta.url, './_runtime-worker');
const lateWorkerEntry = siblingModule(import.meta.url, './_runtime-late-worker');

/** A started worker with everything it reported so far. */
interface Watched {
  handle: WorkerHandle;
  messages: RuntimeWorkerReply[];
  errors: Error[];
  /** Resolves with the exit code; records how many messages had arrived by then. */
  exited: Promise<number>;
  messagesAtExit: () => number | undefined;
  send(command: RuntimeWorkerCommand): void;
  /** Resolves with the first message (from now on, or already received) that `accept` accepts. */
  next(accept: (message: RuntimeWorkerReply) => boolean): Promise<RuntimeWorkerReply>;
}

function watch(handle: WorkerHandle): Watched {
  const messages: RuntimeWorkerReply[] = [];
  const errors: Error[] = [];
  const waiting = new Set<() => void>();
  let atExit: number | undefined;
  handle.onMessage((message) => {
    messages.push(message as RuntimeWorkerReply);
    for (const wake of [...waiting]) wake();
  });
  handle.onError((error) => void errors.push(error));
  const exited = new Promise<number>((resolve) =>
    handle.onExit((code) => {
      atExit = messages.length;
      resolve(code);
      for (const wake of [...waiting]) wake();
    }),
  );
  return {
    handle,
    messages,
    errors,
    exited,
    messagesAtExit: () => atExit,
    send: (command) => handle.postMessage(command),
    next(accept) {
      return new Promise((resolve, reject) => {
        let seen = 0;
        const check = () => {
          for (; seen < messages.length; seen++) {
            const message = messages[seen]!;
            if (accept(message)) {
              waiting.delete(check);
              resolve(message);
              return;
            }
          }
          if (atExit !== undefined) {
            waiting.delete(check);
            reject(
              new Error(`the worker exited before sending the expected message (got ${JSON.stringify(messages)})`),
            );
          }
        };
        waiting.add(check);
        check();
      });
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The message a promise rejects with, or a note that it resolved. Settled before asserting, since
 * `await expect(promise).rejects` can hang under `bun test` when the promise settles through a
 * worker message (oven-sh/bun#37189, #43819).
 */
async function rejection(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => '(resolved, did not reject)',
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
}

/** Registers the suite with vitest. */
export function describeRuntimeConformance(options: RuntimeConformanceOptions): void {
  describe(`runtime adapter conformance: ${options.name}`, () => {
    let runtime!: RuntimeAdapter;
    const started: WorkerHandle[] = [];

    beforeAll(async () => {
      runtime = typeof options.runtime === 'function' ? await options.runtime() : options.runtime;
    });

    afterEach(async () => {
      await Promise.all(started.splice(0).map((handle) => handle.terminate()));
    });

    async function spawn(name: string, entry = workerEntry, maxHeapMb?: number): Promise<Watched> {
      const handle = await runtime.spawnWorker({ name, entry, ...(maxHeapMb === undefined ? {} : { maxHeapMb }) });
      started.push(handle);
      return watch(handle);
    }

    it('names itself and its version', () => {
      expect(runtime.name).toMatch(/^[a-z]+$/);
      expect(runtime.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(typeof runtime.heapLimit).toBe('boolean');
    });

    it('starts a TypeScript worker that imports a .ts module, and answers a message posted right after start', async () => {
      const worker = await spawn('echo');
      worker.send({ type: 'ping', value: { n: 42, list: [1, 2] } });
      expect(await worker.next((message) => message.type === 'echo')).toEqual({
        type: 'echo',
        value: { n: 42, list: [1, 2] },
        described: 'TypeError: x',
      });
    });

    it('delivers every message posted before the entry listens, in order (ready handshake + buffer)', async () => {
      const worker = await spawn('late', lateWorkerEntry);
      for (let value = 0; value < 5; value++) worker.send({ type: 'ping', value });
      await worker.next((message) => message.type === 'echo' && message.value === 4);
      expect(worker.messages.map((message) => (message as { value?: unknown }).value)).toEqual([0, 1, 2, 3, 4]);
    });

    it('reports exit code 0 when the worker closes its channel, after every message it posted arrived', async () => {
      // An exit reported through another channel than the messages (Deno's web Worker + Web Lock,
      // tried and dropped) overtakes the last messages some of the time; several rounds of workers
      // closing right after a burst make that visible.
      for (let round = 0; round < 4; round++) {
        await Promise.all(
          [1, 10, 100, 1000].map(async (count) => {
            const worker = await spawn(`burst-${count}`);
            worker.send({ type: 'burst', count });
            expect(await worker.exited).toBe(0);
            expect(worker.messagesAtExit()).toBe(count);
            expect((worker.messages.at(-1) as { index?: number } | undefined)?.index).toBe(count - 1);
            expect(worker.errors).toEqual([]);
          }),
        );
      }
    });

    it('reports an uncaught error with its name and message, then an exit with a non-zero code', async () => {
      const worker = await spawn('crash');
      worker.send({ type: 'crash' });
      const code = await worker.exited;
      expect(code).not.toBe(0);
      expect(worker.errors).toHaveLength(1);
      expect(worker.errors[0]?.message).toContain('crashed on purpose');
      expect(worker.errors[0]?.name).toBe('RangeError');
    });

    it('reports an unhandled rejection like an uncaught error (non-zero exit code)', async () => {
      const worker = await spawn('reject');
      worker.send({ type: 'reject' });
      expect(await worker.exited).not.toBe(0);
      expect(worker.errors[0]?.message).toContain('rejected on purpose');
    });

    it('hands what a worker writes to its own stdout and stderr to onOutput line by line, whole lines however written', async () => {
      const worker = await spawn('writes');
      const lines: string[] = [];
      worker.handle.onOutput?.((line, stream) => void lines.push(`${stream}: ${line}`));
      expect(worker.handle.onOutput, 'the handle offers onOutput').toBeTypeOf('function');
      worker.send({ type: 'write', stdout: ['one\ntw', 'o\n', 'thr'], stderr: 'é ✓\n' });
      await worker.next((message) => message.type === 'written');
      worker.send({ type: 'quit' });
      expect(await worker.exited).toBe(0);
      // The last line, without its newline, comes at the worker's end.
      for (let tries = 0; tries < 100 && lines.length < 4; tries++) await sleep(20);
      expect(lines.filter((line) => line.startsWith('stdout'))).toEqual(['stdout: one', 'stdout: two', 'stdout: thr']);
      expect(lines.filter((line) => line.startsWith('stderr'))).toEqual(['stderr: é ✓']);
    });

    it('reports process.exit(code) in the worker as an exit with that code, without an error', async () => {
      const worker = await spawn('exit');
      worker.send({ type: 'exit', code: 7 });
      expect(await worker.exited).toBe(7);
      expect(worker.errors).toEqual([]);
    });

    it('keeps a worker that only waits in Atomics.waitAsync alive until it is notified (waitAsync alone keeps no worker alive)', async () => {
      const worker = await spawn('wait');
      const words = new Int32Array(new SharedArrayBuffer(4));
      worker.send({ type: 'wait', buffer: words.buffer as SharedArrayBuffer });
      await worker.next((message) => message.type === 'waiting');
      // Give a worker kept alive by nothing but the wait the time to end: a worker with an empty
      // event loop ends within milliseconds. A slow machine can only hide a failure here, never fake one.
      const early = await Promise.race([worker.exited.then((code) => `exited with code ${code}`), sleep(200)]);
      expect(early).toBeUndefined();
      Atomics.store(words, 0, 5);
      Atomics.notify(words, 0);
      expect(await worker.next((message) => message.type === 'woken')).toEqual({ type: 'woken', value: 5 });
    });

    it('terminate() ends a busy worker, resolves once it is gone, and does nothing afterwards', async () => {
      const worker = await spawn('busy');
      worker.send({ type: 'busy' });
      await worker.next((message) => message.type === 'busy');
      await worker.handle.terminate();
      const reported = await Promise.race([worker.exited, Promise.resolve('still running')]);
      expect(reported).toBeTypeOf('number');
      await worker.handle.terminate();
      // A listener added after the end hears of it at once.
      let late: number | undefined;
      worker.handle.onExit((code) => {
        late = code;
      });
      expect(late).toBe(reported);
    });

    it('rejects spawnWorker with the reason when the entry cannot be loaded', async () => {
      const missing = siblingModule(import.meta.url, './_no-such-entry');
      expect(await rejection(runtime.spawnWorker({ name: 'missing', entry: missing }))).toMatch(/_no-such-entry/);
    });

    it('rejects spawnWorker when the entry does not export runWorker', async () => {
      const notAnEntry = siblingModule(import.meta.url, '../errors');
      expect(await rejection(runtime.spawnWorker({ name: 'no-run', entry: notAnEntry }))).toMatch(/runWorker/);
    });

    it('enforces maxHeapMb where heapLimit is true, and otherwise ignores it', async () => {
      const worker = await spawn('heap', workerEntry, 32);
      if (runtime.heapLimit) {
        worker.send({ type: 'grow' });
        expect(await worker.exited).not.toBe(0);
        expect(worker.errors.length).toBeGreaterThan(0);
      } else {
        worker.send({ type: 'ping', value: 1 });
        await worker.next((message) => message.type === 'echo');
        worker.send({ type: 'quit' });
        expect(await worker.exited).toBe(0);
      }
    });

    describe('files and paths', () => {
      it('reads text files; a missing file and a folder reject with ENOENT and EISDIR', async () => {
        const here = new URL(import.meta.url).pathname;
        expect(await runtime.readTextFile(here)).toContain('describeRuntimeConformance');
        const missing = await runtime.readTextFile(runtime.path.join(here, '..', 'no-such-file.txt')).catch((e) => e);
        expect((missing as { code?: unknown }).code).toBe('ENOENT');
        const folder = await runtime.readTextFile(runtime.path.dirname(here)).catch((e) => e);
        expect((folder as { code?: unknown }).code).toBe('EISDIR');
        expect(await runtime.isFile(here)).toBe(true);
        expect(await runtime.isFile(runtime.path.dirname(here))).toBe(false);
        expect(await runtime.isFile(runtime.path.join(here, 'nope'))).toBe(false);
      });

      it('creates folders with their parents and appends to files in order', async () => {
        const dir = runtime.path.join(
          runtime.cwd(),
          'runs',
          '.runtime-conformance',
          `${options.name}-${crypto.randomUUID()}`,
          'nested',
        );
        await runtime.makeDirectory(dir);
        await runtime.makeDirectory(dir);
        const file = runtime.path.join(dir, 'log.txt');
        const first = await runtime.openAppendFile(file);
        for (let line = 0; line < 100; line++) first.write(`line ${line}\n`);
        await first.close();
        const second = await runtime.openAppendFile(file);
        second.write('appended\n');
        await second.close();
        const lines = (await runtime.readTextFile(file)).trimEnd().split('\n');
        expect(lines).toHaveLength(101);
        expect(lines[0]).toBe('line 0');
        expect(lines[99]).toBe('line 99');
        expect(lines[100]).toBe('appended');
        // A file in the way, or a place where no folder can be made, is refused by name — at once,
        // never a hang (Node 20's recursive mkdir never returns under /proc).
        const inTheWay = await settle(runtime.makeDirectory(runtime.path.join(file, 'sub')));
        expect(inTheWay).toMatch(/^cannot use .*log\.txt.sub as a folder: .*log\.txt is a file, not a folder$/);
        if (await runtime.isFile('/proc/self/status')) {
          expect(await settle(runtime.makeDirectory('/proc/improv-conformance/run'))).toMatch(
            /^cannot use \/proc\/improv-conformance\/run as a folder: /,
          );
        }
      });

      it('has POSIX path helpers and an absolute working directory', () => {
        const { path } = runtime;
        expect(path.isAbsolute(runtime.cwd())).toBe(true);
        expect(path.resolve('/a/b', '../c', 'd.ts')).toBe('/a/c/d.ts');
        expect(path.join('a', 'b', '..', 'c')).toBe('a/c');
        expect(path.dirname('/a/b/c.yaml')).toBe('/a/b');
        expect(path.basename('/a/b/c.yaml', '.yaml')).toBe('c');
        expect(path.relative('/a/b', '/a/c/d')).toBe('../c/d');
        expect(path.isAbsolute('a/b')).toBe(false);
        expect(path.toFileUrl('/a b/c#1.ts')).toBe('file:///a%20b/c%231.ts');
      });
    });
  });
}

/** The message a promise rejects with, or `resolved`. */
async function settle(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
