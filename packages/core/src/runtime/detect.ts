/**
 * Picks the default runtime adapter for the runtime this code runs in. Used only for defaults: an
 * adapter passed to `createNexus` explicitly always wins.
 * @module
 */
import { RuntimeUnavailableError } from '../errors.ts';
import type { RuntimeAdapter } from './adapter.ts';

/** Name of the runtime this code runs in. */
export function currentRuntimeName(): 'node' | 'bun' | 'deno' | 'unknown' {
  const global = globalThis as { Bun?: unknown; Deno?: unknown; process?: { versions?: { node?: string } } };
  if (global.Bun !== undefined) return 'bun';
  if (global.Deno !== undefined) return 'deno';
  if (global.process?.versions?.node !== undefined) return 'node';
  return 'unknown';
}

/** The adapter for the current runtime. */
export async function detectRuntime(): Promise<RuntimeAdapter> {
  const name = currentRuntimeName();
  if (name === 'node') {
    const { createNodeRuntime } = await import('./node.ts');
    return createNodeRuntime();
  }
  throw new RuntimeUnavailableError(
    `no runtime adapter for ${name} in this version of @improv/core (only Node.js is supported so far); run under Node.js, or pass runtime: to createNexus`,
  );
}
