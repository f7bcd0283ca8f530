/**
 * The Node.js runtime adapter: workers are `node:worker_threads` (Node has no global web `Worker`),
 * TypeScript loads through tsx (Node 20 cannot start a `.ts` worker; newer Node's type stripping
 * refuses files under node_modules), files through `node:fs`.
 *
 * @example
 * ```ts
 * import { createNodeRuntime } from '@improv/core/runtime/node';
 * const nexus = await createNexus({ config: 'pipeline.yaml', runtime: createNodeRuntime(), store, transport });
 * ```
 * @module
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { AppendFile, RuntimeAdapter, SpawnWorkerOptions, WorkerHandle } from './adapter.ts';

const bootstrapUrl = new URL('./node-worker.mjs', import.meta.url);
const helloType = '__improv_hello';

/** Creates the Node adapter. */
export function createNodeRuntime(): RuntimeAdapter {
  return {
    name: 'node',
    version: process.versions.node,
    spawnWorker,
    onShutdownSignal(handler) {
      const onInt = () => handler('SIGINT');
      const onTerm = () => handler('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      return () => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
      };
    },
    readTextFile: (file) => readFile(file, 'utf8'),
    async isFile(file) {
      try {
        return (await stat(file)).isFile();
      } catch {
        return false;
      }
    },
    async makeDirectory(dir) {
      await mkdir(dir, { recursive: true });
    },
    openAppendFile,
    cwd: () => process.cwd(),
    path: {
      resolve: (...segments) => path.resolve(...segments),
      join: (...segments) => path.join(...segments),
      dirname: (file) => path.dirname(file),
      basename: (file, suffix) => path.basename(file, suffix),
      relative: (from, to) => path.relative(from, to),
      isAbsolute: (file) => path.isAbsolute(file),
      toFileUrl: (file) => pathToFileURL(file).href,
    },
  };
}

function spawnWorker(options: SpawnWorkerOptions): Promise<WorkerHandle> {
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

function openAppendFile(file: string): Promise<AppendFile> {
  return new Promise((resolve, reject) => {
    const stream = createWriteStream(file, { flags: 'a' });
    stream.once('error', reject);
    stream.once('open', () => {
      stream.off('error', reject);
      // A write error later (disk full) must not crash the pipeline; the run log is best effort.
      stream.on('error', () => {});
      resolve({
        write: (text) => void stream.write(text),
        close: () => new Promise<void>((done) => stream.end(done)),
      });
    });
  });
}
