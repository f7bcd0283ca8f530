#!/usr/bin/env node
// The `improv` command. Installed from npm it runs the compiled dist/; in the workspace it runs
// src/ as it is — on Node through tsx, which also loads the user's TypeScript actor files (Bun and
// Deno run TypeScript natively).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/main.js', import.meta.url);
/** Deno without --allow-read may not look; the sources then run, and main names the permissions. */
const isCompiled = () => {
  try {
    return existsSync(compiled);
  } catch {
    return false;
  }
};
let main;
if (isCompiled()) {
  ({ main } = await import(compiled.href));
} else {
  if (!globalThis.Bun && !globalThis.Deno) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  ({ main } = await import('../src/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
