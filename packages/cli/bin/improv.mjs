#!/usr/bin/env node
// The `improv` command. Installed from npm it runs the compiled dist/; in the workspace it runs
// src/ as it is — on Node through tsx, which also loads the user's TypeScript actor files (Bun and
// Deno run TypeScript natively).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/main.js', import.meta.url);
/**
 * Deno without --allow-read may not look (undefined). In the workspace the sources then run, and
 * main names the permissions; installed, the sources are not there to run (Deno strips no types
 * under node_modules), so this says it.
 */
const isCompiled = () => {
  try {
    return existsSync(compiled);
  } catch {
    return undefined;
  }
};
const compiledThere = isCompiled();
if (compiledThere === undefined && import.meta.url.includes('/node_modules/')) {
  const script = new URL(import.meta.url).pathname;
  console.error(
    `improv: Deno was not given the read permission it needs (validate needs --allow-read --allow-env; run also --allow-write --allow-sys --allow-net)\n  fix: run it as  deno run -A ${script} ${process.argv.slice(2).join(' ')}`,
  );
  process.exit(2);
}
let main;
if (compiledThere) {
  ({ main } = await import(compiled.href));
} else {
  if (!globalThis.Bun && !globalThis.Deno) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  ({ main } = await import('../src/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
