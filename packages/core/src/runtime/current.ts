/**
 * Which runtime this code runs in. A leaf module: the adapters and `detect.ts` all import it, and it
 * imports none of them.
 * @module
 */

/** Names of the runtimes with an adapter. */
export type RuntimeName = 'node' | 'bun' | 'deno';

/** How to install each runtime, for the fix of a message that says it is missing. */
export const runtimeInstallHelp: Readonly<Record<RuntimeName, string>> = {
  node: 'install Node.js (see https://nodejs.org)',
  bun: 'npm install -D bun (or see https://bun.sh)',
  deno: 'npm install -D deno (or see https://deno.com)',
};

/** How to get a Python for Python actors, as every message that misses one says it. */
export const pythonInstallHelp =
  'install Python 3 with numpy, pyzmq and msgpack (Debian/Ubuntu: sudo apt-get install python3 python3-numpy python3-zmq python3-msgpack), or set  python: /path/to/python3  under settings';

/** Name of the runtime this code runs in. */
export function currentRuntimeName(): RuntimeName | 'unknown' {
  const global = globalThis as { Bun?: unknown; Deno?: unknown; process?: { versions?: { node?: string } } };
  // Bun and Deno also set process.versions.node, so they are checked first.
  if (global.Bun !== undefined) return 'bun';
  if (global.Deno !== undefined) return 'deno';
  if (global.process?.versions?.node !== undefined) return 'node';
  return 'unknown';
}
