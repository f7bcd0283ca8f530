/**
 * Worker entries by URL, from source or compiled (package-private). In the workspace the modules are
 * `.ts` files run as they are; in the published package they are compiled to `.js` next to each
 * other. A worker entry named by `new URL('./x.ts', import.meta.url)` would exist only in the first,
 * so entries are named without their extension and take that of the module naming them.
 * @module
 */

/** `.ts` when `base` (an `import.meta.url`) runs from source, `.js` when compiled. */
export function moduleExtension(base: string): string {
  return /\.[cm]?[jt]s$/.exec(new URL(base).pathname)?.[0] ?? '.js';
}

/** The URL of the module `path` (no extension) next to `base` (an `import.meta.url`), with `base`'s extension. */
export function siblingModule(base: string, path: string): string {
  return new URL(`${path}${moduleExtension(base)}`, base).href;
}
