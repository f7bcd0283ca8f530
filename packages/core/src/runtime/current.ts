/**
 * Which runtime this code runs in. A leaf module: the adapters and `detect.ts` all import it, and it
 * imports none of them.
 * @module
 */

/** Names of the runtimes with an adapter. */
export type RuntimeName = 'node' | 'bun' | 'deno';

/** Name of the runtime this code runs in. */
export function currentRuntimeName(): RuntimeName | 'unknown' {
  const global = globalThis as { Bun?: unknown; Deno?: unknown; process?: { versions?: { node?: string } } };
  // Bun and Deno also set process.versions.node, so they are checked first.
  if (global.Bun !== undefined) return 'bun';
  if (global.Deno !== undefined) return 'deno';
  if (global.process?.versions?.node !== undefined) return 'node';
  return 'unknown';
}
