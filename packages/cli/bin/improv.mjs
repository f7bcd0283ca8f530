#!/usr/bin/env node
// The `improv` command. On Node, TypeScript (ours and the user's actor files) loads through tsx;
// Bun and Deno run TypeScript natively.
if (!globalThis.Bun && !globalThis.Deno) {
  const { register } = await import('tsx/esm/api');
  register();
}
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
