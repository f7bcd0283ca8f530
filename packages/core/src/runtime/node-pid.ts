/**
 * Whether a process still runs, by its pid (`@improv/core/runtime/pid`; `node:process`, which Bun and
 * Deno implement too). The store drivers ask it of the run that holds a store or of the server they
 * started, the CLI of the runs in its registry.
 *
 * @example
 * ```ts
 * import { processAlive } from '@improv/core/runtime/pid';
 * if (!processAlive(entry.pid)) removeStaleEntry(entry);
 * ```
 * @module
 */
import process from 'node:process';

/** What {@link processAlive} counts as running. */
export interface ProcessAliveOptions {
  /**
   * Whether a process this one may not signal (another user's: `kill` fails with EPERM) counts as
   * running. Default `true`: it exists. `false` to ask after a child of this process: its pid can
   * belong to another user's process only once the child is gone.
   */
  othersCount?: boolean;
}

/**
 * Whether process `pid` runs on this machine (signal 0: nothing is sent). `false` for a pid that is
 * not a positive integer — 0 and negative pids name process groups, not a process.
 */
export function processAlive(pid: number, options: ProcessAliveOptions = {}): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (options.othersCount ?? true) && (error as { code?: string }).code === 'EPERM';
  }
}
