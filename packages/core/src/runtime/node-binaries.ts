/**
 * Where each runtime's binary is, and how to make it run a script (`@improv/core/runtime/binaries`; the Node, Bun
 * and Deno adapters share it through `node:fs`, and the CLI's `--runtime` uses it too). A binary is
 * looked up in the nearest `node_modules/.bin` (walking up from each start folder), then on `PATH`;
 * the runtime this code runs in is always its own executable.
 * @module
 */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { currentRuntimeName, type RuntimeName } from './current.ts';

/** How to install each runtime, as every message that misses one says it. */
export { pythonInstallHelp, runtimeInstallHelp } from './current.ts';

/** Where to look for a runtime's binary. */
export interface RuntimeSearch {
  /**
   * Folders to walk up from, looking in each `node_modules/.bin`. Default: the working directory,
   * then this package's folder (so an installed improv finds the runtimes installed beside it).
   */
  from?: string[];
  /** The `PATH` to search last. Default: `process.env.PATH`. */
  path?: string;
}

const ownFolder = path.dirname(fileURLToPath(import.meta.url));

/** The path of `name`'s binary, or undefined when it is nowhere to be found. */
export function findRuntimeBinary(name: RuntimeName, search: RuntimeSearch = {}): string | undefined {
  const starts = search.from ?? [process.cwd(), ownFolder];
  for (const start of starts) {
    for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'node_modules', '.bin', name);
      if (isExecutable(candidate)) return candidate;
      if (path.dirname(dir) === dir) break;
    }
  }
  return findExecutable(name, search);
}

/** The path of `command`: itself when it names a file (has a `/`), else the first executable of that name on `PATH`. */
export function findExecutable(command: string, search: Pick<RuntimeSearch, 'path'> = {}): string | undefined {
  if (command.includes('/')) return isExecutable(command) ? command : undefined;
  for (const dir of (search.path ?? process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** {@link findRuntimeBinary}, but the runtime in use is its own executable wherever it was found. */
export function findRuntime(name: RuntimeName): string | undefined {
  return currentRuntimeName() === name ? process.execPath : findRuntimeBinary(name);
}

/**
 * Arguments that make `name`'s binary run `script`: Deno needs `run -A` (workers, files, network,
 * environment, signals). `maxHeapMb` sets the V8 heap limit on Node and Deno (Bun has none to set).
 */
export function scriptArguments(name: RuntimeName, script: string, maxHeapMb?: number): string[] {
  const heap = maxHeapMb === undefined ? [] : [`--max-old-space-size=${maxHeapMb}`];
  if (name === 'deno') return ['run', '-A', ...(heap.length > 0 ? [`--v8-flags=${heap[0]}`] : []), script];
  return name === 'node' ? [...heap, script] : [script];
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
