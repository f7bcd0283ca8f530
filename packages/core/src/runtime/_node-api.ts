/**
 * The parts of the runtime adapters that use Node's built-in modules (`node:fs`, `node:path`,
 * `node:process`), which Bun and Deno implement too: one implementation of files, paths and
 * process signals instead of one per adapter. Package-private; the adapters compose it.
 * @module
 */
import { constants, createWriteStream } from 'node:fs';
import { access, mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import type { AppendFile, PathApi, RuntimeAdapter } from './adapter.ts';

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

/**
 * Creates `folder` and its missing parents one level at a time, and checks it is a folder this
 * process can write to. Not `mkdir({ recursive: true })`: on Node 20 that never returns for a path
 * under /proc. Rejects with an error that names the path and what is wrong with it.
 */
async function makeDirectory(folder: string): Promise<void> {
  const missing: string[] = [];
  try {
    for (let dir = path.resolve(folder); ; dir = path.dirname(dir)) {
      let isDirectory: boolean;
      try {
        isDirectory = (await stat(dir)).isDirectory();
      } catch (error) {
        // ENOTDIR: a file stands somewhere above; the walk up finds it and names it.
        const code = (error as { code?: string }).code;
        if ((code !== 'ENOENT' && code !== 'ENOTDIR') || path.dirname(dir) === dir) throw error;
        missing.unshift(dir);
        continue;
      }
      if (!isDirectory) throw new Error(`${dir} is a file, not a folder`);
      break;
    }
    for (const dir of missing) await mkdir(dir);
    await access(folder, constants.W_OK);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const reason =
      code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? 'no permission to write there'
        : code === 'ENOENT'
          ? 'it cannot be created there'
          : error instanceof Error
            ? error.message
            : String(error);
    throw new Error(`cannot use ${folder} as a folder: ${reason}`, { cause: error });
  }
}

/** SIGINT/SIGTERM through `process.on` (Node and Bun). */
export function onProcessSignal(handler: (signal: 'SIGINT' | 'SIGTERM') => void): () => void {
  const onInt = () => handler('SIGINT');
  const onTerm = () => handler('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return () => {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
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
