/**
 * The parts of the runtime adapters that use Node's built-in modules (`node:fs`, `node:path`,
 * `node:process`), which Bun and Deno implement too: one implementation of files, paths and
 * process signals instead of one per adapter. Package-private; the adapters compose it.
 * @module
 */
import { createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import type { AppendFile, PathApi, RuntimeAdapter, ShutdownSignal } from './adapter.ts';
import { makeFolder } from './node-folders.ts';

/** Path helpers over `node:path`. */
export const nodePath: PathApi = {
  resolve: (...segments) => path.resolve(...segments),
  join: (...segments) => path.join(...segments),
  dirname: (file) => path.dirname(file),
  basename: (file, suffix) => path.basename(file, suffix),
  relative: (from, to) => path.relative(from, to),
  isAbsolute: (file) => path.isAbsolute(file),
  toFileUrl: (file) => pathToFileURL(file).href,
};

/** Files and the working directory over `node:fs` and `node:process`. */
export const nodeFiles: Pick<RuntimeAdapter, 'readTextFile' | 'isFile' | 'makeDirectory' | 'openAppendFile' | 'cwd'> = {
  readTextFile: (file) => readFile(file, 'utf8'),
  async isFile(file) {
    try {
      return (await stat(file)).isFile();
    } catch (error) {
      // Not there is an answer; not allowed to look (EACCES, Deno's NotCapable) is not "not found".
      const code = (error as { code?: unknown } | null)?.code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') return false;
      throw error;
    }
  },
  makeDirectory,
  openAppendFile,
  cwd: () => process.cwd(),
};

/** The run folder and its log folders: {@link makeFolder}'s walk, as the adapter's promise. */
async function makeDirectory(folder: string): Promise<void> {
  makeFolder(folder);
}

/** The signals {@link RuntimeAdapter.onShutdownSignal} takes, in every adapter. */
export const shutdownSignals: readonly ShutdownSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** SIGINT/SIGTERM/SIGHUP through `process.on` (Node and Bun). */
export function onProcessSignal(handler: (signal: ShutdownSignal) => void): () => void {
  const listeners = shutdownSignals.map((signal) => [signal, () => handler(signal)] as const);
  for (const [signal, listener] of listeners) process.on(signal, listener);
  return () => {
    for (const [signal, listener] of listeners) process.off(signal, listener);
  };
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
