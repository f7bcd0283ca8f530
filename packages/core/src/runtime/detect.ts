/**
 * Picks the default runtime adapter for the runtime this code runs in. Used only for defaults: an
 * adapter passed to `createNexus` explicitly always wins. Each adapter is imported dynamically, so
 * a runtime never loads another runtime's module.
 *
 * @example
 * ```ts
 * import { currentRuntimeName, detectRuntime } from '@improv/core';
 * const runtime = await detectRuntime(); // the Bun adapter under bun, the Deno adapter under deno, ...
 * console.log(currentRuntimeName(), runtime.version);
 * ```
 * @module
 */
import { RuntimeUnavailableError } from '../errors.ts';
import type { RuntimeAdapter } from './adapter.ts';
import { currentRuntimeName } from './current.ts';

export { currentRuntimeName, type RuntimeName } from './current.ts';

/** The adapter for the current runtime. */
export async function detectRuntime(): Promise<RuntimeAdapter> {
  const name = currentRuntimeName();
  switch (name) {
    case 'node': {
      const { createNodeRuntime } = await import('./node.ts');
      return createNodeRuntime();
    }
    case 'bun': {
      const { createBunRuntime } = await import('./bun.ts');
      return createBunRuntime();
    }
    case 'deno': {
      const { createDenoRuntime } = await import('./deno.ts');
      return createDenoRuntime();
    }
    default:
      throw new RuntimeUnavailableError(
        'no runtime adapter for this runtime: @improv/core runs in Node.js, Bun or Deno; run under one of them, or pass runtime: to createNexus',
      );
  }
}
