/**
 * Making a folder a user named (`@improv/core/runtime/folders`; `node:fs`, which Bun and Deno
 * implement too): the run folder, the lmdb store's folder, key and token files' folders. One walk
 * for all of them, because `mkdir(path, { recursive: true })` cannot be trusted with a user's path:
 * on Node 20 and 22 it never returns for a path under /proc (it retries the missing level forever,
 * at 100% CPU, deaf to Ctrl-C).
 *
 * @example
 * ```ts
 * import { makeFolder } from '@improv/core/runtime/folders';
 * const created = makeFolder(options.path, { mode: 0o700 });
 * ```
 * @module
 */
import { accessSync, constants, mkdirSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** Options of {@link makeFolder}. */
export interface MakeFolderOptions {
  /** Permission bits of each folder created (default 0o777, less the umask). */
  mode?: number;
}

/**
 * Creates `folder` and its missing parents one level at a time, and checks that it is a folder this
 * process can write to. Returns whether `folder` itself was created. Throws an error that names the
 * path and what is wrong with it ("cannot use … as a folder: no permission to write there", "… is a
 * file, not a folder", "… it cannot be created there"), with the system's error as its `cause`.
 */
export function makeFolder(folder: string, options: MakeFolderOptions = {}): boolean {
  try {
    const missing = missingLevels(folder);
    for (const dir of missing) {
      try {
        mkdirSync(dir, options.mode === undefined ? undefined : { mode: options.mode });
      } catch (error) {
        // Another process made it meanwhile: fine, if it is a folder (the access check below).
        if ((error as { code?: string }).code !== 'EEXIST') throw error;
      }
    }
    accessSync(folder, constants.W_OK | constants.X_OK);
    return missing.length > 0;
  } catch (error) {
    throw folderError(folder, error);
  }
}

/**
 * What {@link makeFolder} would refuse, leaving nothing behind (for `improv validate`): a file in the
 * way, a nearest existing folder this process cannot write, or a place where folders cannot be made
 * (/proc, where root passes the access check): the first missing level is made and removed again.
 * `undefined` when it can be made.
 */
export function folderProblem(folder: string): string | undefined {
  try {
    const missing = missingLevels(folder);
    const first = missing[0];
    accessSync(first === undefined ? folder : path.dirname(first), constants.W_OK | constants.X_OK);
    if (first !== undefined) {
      try {
        mkdirSync(first);
      } catch (error) {
        // Another process made it meanwhile: then it is not ours to remove.
        if ((error as { code?: string }).code === 'EEXIST') return undefined;
        throw error;
      }
      rmdirSync(first);
    }
    return undefined;
  } catch (error) {
    return folderError(folder, error).message;
  }
}

/** The levels of `folder` that do not exist yet, outermost first; throws when a file is in the way. */
function missingLevels(folder: string): string[] {
  const missing: string[] = [];
  for (let dir = path.resolve(folder); ; dir = path.dirname(dir)) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(dir).isDirectory();
    } catch (error) {
      // ENOTDIR: a file stands somewhere above; the walk up finds it and names it.
      const code = (error as { code?: string }).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || path.dirname(dir) === dir) throw error;
      missing.unshift(dir);
      continue;
    }
    if (!isDirectory) throw new Error(`${dir} is a file, not a folder`);
    return missing;
  }
}

function folderError(folder: string, error: unknown): Error {
  const code = (error as { code?: string }).code;
  const reason =
    code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
      ? 'no permission to write there'
      : code === 'ENOENT'
        ? 'it cannot be created there'
        : error instanceof Error
          ? error.message
          : String(error);
  return new Error(`cannot use ${folder} as a folder: ${reason}`, { cause: error });
}
